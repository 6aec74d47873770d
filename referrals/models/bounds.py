"""What the engine accepts from a user as a count or a date: the same bounds on every way in.

Without them a huge offset overflowed SQLite's integers and the year 0001 or 9999 overflowed
Python's dates while converting to UTC: a 500 or "internal error" instead of a refusal. Each edge
checks here before any query (pydantic validators for forms, rows and the API; the same
functions for the CLI's options; this module imports nothing, so the CLI can load it), so a refusal names the field and changes nothing.

Dates run from 01/01/2000 to 31/12/2100: the office's records start long after 2000, Vietnam's
offset has been +07:00 throughout (the report needs one offset over a period), and the
working-day calendar knows every year of that span.
"""

from __future__ import annotations

import datetime as dt

EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2100, 12, 31)
MAX_ROWS = 1_000_000_000  # offsets and limits: far beyond any table, far inside 64-bit integers
MAX_PORT = 65_535
MAX_SECONDS = 86_400  # intervals of the served schedules


def check_day(day: dt.date, what: str = "the date") -> dt.date:
    """`day` if within the bounds, else a ValueError that says what is accepted."""
    if not EARLIEST <= day <= LATEST:
        raise ValueError(
            f"{what} {day.day:02d}/{day.month:02d}/{day.year:04d} is out of range: "
            f"use a day from {EARLIEST:%d/%m/%Y} to {LATEST:%d/%m/%Y}"
        )
    return day


def check_instant(at: dt.datetime, what: str = "the time") -> dt.datetime:
    """`at` if its day is within the bounds (naive or aware, compared on its own calendar)."""
    check_day(at.date(), what)
    return at
