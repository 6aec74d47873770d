"""A day as people here type it: dd/mm/yyyy, whatever the browser's or the machine's locale.

The one parser for typed dates (the pages' date fields, the period report's `--from`/`--to`).
Why not `<input type="date">`: its display follows the browser's locale, so a browser set to
en-US shows and takes mm/dd/yyyy, and 03/12 becomes 12 March for an office that means
3 December. A plain text field with this parser reads the same everywhere; ISO 8601
(yyyy-mm-dd) is accepted as well, for links and scripts.

- `parse_day(text)` -> `datetime.date`, or `NotADay` (a `ValueError`) saying how to write it
  (also 8 digits, ddmmyyyy: a phone's number pad may have no "/");
- `Day`: the same as a pydantic field type (a `date`, or text parsed as above);
- `PATTERN`, `PLACEHOLDER`: the HTML field's `pattern` and `placeholder`, so the browser
  checks the shape before sending (the server checks again: pages work without it). The staff
  pages' templates write a field as `<input name="on" {{ day_field() }}>`
  (web/templates/_fields.html).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

PLACEHOLDER = "dd/mm/yyyy"
# For the HTML `pattern` attribute (anchored by the browser): 3/12/2026, 03/12/2026, 2026-12-03,
# and 03122026 (a phone's number pad, which `inputmode="numeric"` opens, often has no "/").
PATTERN = r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}"
_LOCAL = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})", re.ASCII)
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DIGITS = re.compile(r"(\d{2})(\d{2})(\d{4})", re.ASCII)  # ddmmyyyy
FIRST_YEAR, LAST_YEAR = 1900, 2200  # beyond these a typed year is a typing mistake


class NotADay(ValueError):
    """Typed text that is not a day (or not a real one: 31/02/2026). `text` is what was typed,
    for the refusal in the reader's language (web/words.py `err_bad_day`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"{text!r} is not a date: write it as dd/mm/yyyy, e.g. 31/12/2026")


def parse_day(text: str) -> dt.date:
    """`31/12/2026` (day first, as written here; 1 or 2 digits, `/`, `.` or `-` between),
    `31122026` (the same without separators) or `2026-12-31` (ISO 8601) -> the date. Anything
    else, or a day that does not exist, raises `NotADay`."""
    typed = text.strip()
    if found := _ISO.fullmatch(typed):
        year, month, day = (int(g) for g in found.groups())
    elif found := _LOCAL.fullmatch(typed) or _DIGITS.fullmatch(typed):
        day, month, year = (int(g) for g in found.groups())
    else:
        raise NotADay(text)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise NotADay(text)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise NotADay(text) from None


def show_day(value: dt.date | None) -> str:
    """The date as it is typed back into a field: 03/12/2026 (empty for none)."""
    return value.strftime("%d/%m/%Y") if value else ""


def _day_of(value: Any) -> Any:
    """A pydantic field's input: text is parsed as `parse_day` does; a date (or anything
    else) is left for pydantic's own `date` check."""
    if isinstance(value, str):
        return parse_day(value)
    return value


# A pydantic field that takes dd/mm/yyyy (or ISO) text: `on: Day | None = None`.
Day = Annotated[dt.date, BeforeValidator(_day_of)]
