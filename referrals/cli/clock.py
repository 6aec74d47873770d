"""`--now`: the clock the CLI runs on, injectable so demos and tests can travel in time."""

from __future__ import annotations

import datetime as dt

from referrals.config.settings import get_settings
from referrals.models.bounds import check_instant


def parse_now(value: str | None) -> dt.datetime:
    """ISO 8601 to UTC; a value without offset is local time (REFERRALS_TIMEZONE)."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--now {value!r} is not ISO 8601 (e.g. 2026-11-23T09:00+07:00)") from None
    check_instant(parsed, "--now")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=get_settings().tz)
    return parsed.astimezone(dt.UTC)
