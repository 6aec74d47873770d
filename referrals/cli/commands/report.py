"""`referrals report`: the period report, for managers and the province."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from referrals.cli.shared import JsonOpt, NowOpt
from referrals.reports.formats import ReportFormat


def report(
    first: Annotated[
        str, typer.Option("--from", help="First day, ISO (2026-01-01) or dd/mm/yyyy.")
    ],
    last: Annotated[str, typer.Option("--to", help="Last day, included.")],
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.md,
    district: Annotated[str | None, typer.Option("--district", help="One district only.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="vi or en.")] = "vi",
    areas_as_of: Annotated[
        str | None,
        typer.Option(
            "--areas-as-of",
            help="Group by the areas in force on this day (default: the period's last day), "
            "e.g. 2020-12-31 for the districts before the 2025 reform.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The period report: clients and referrals by service and district, partners' response
    times, messages; as of the end of the period, so a past period's figures do not move.
    Referrals count under the areas in force at the period's end (or on --areas-as-of),
    through the succession of the 2025 reform, so 2020 and 2026 can be compared."""
    from referrals.cli.clock import parse_now
    from referrals.config.settings import get_settings
    from referrals.reports.period import period_report

    text = period_report(
        first=first,
        last=last,
        fmt="json" if as_json else fmt.value,
        now=parse_now(now),
        district=district,
        lang=lang,
        user=get_settings().user,
        areas_as_of=areas_as_of,
    )
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    print(f"report written to {out}")
