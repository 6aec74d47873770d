"""The report's output formats, in a module of their own: the CLI offers them without loading
the report's words and locales (reports/render.py lays each one out)."""

from enum import StrEnum


class ReportFormat(StrEnum):
    md = "md"
    csv = "csv"
    json = "json"
    html = "html"
