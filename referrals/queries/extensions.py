"""Requests for more time (gia hạn) that wait for a coordinator, for `referrals extension list`:
SQL on a read-only connection, codes and dates only (the reasons stay sealed)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from referrals.queries.areas import district_params, in_district
from referrals.queries.reading import Reader, local_iso

WAITING_SQL = """
SELECT e.id, r.code, s.key AS step, o.slug AS partner, r.area_key AS district,
       e.was_due_at, e.new_due_at, e.asked_at
FROM extension e
JOIN referral r ON r.id = e.referral_id
JOIN step s ON s.id = e.step_id
JOIN organization o ON o.id = r.organization_id
WHERE e.status = 'requested' {where}
ORDER BY e.asked_at, e.id
"""
TIMES = ("was_due_at", "new_due_at", "asked_at")


def waiting_requests(
    reader: Reader, *, tz: ZoneInfo, district: str | None = None
) -> list[dict[str, Any]]:
    """The requests waiting for a decision, oldest first (in one district, if given); times
    in local ISO 8601 with their offset."""
    where = f"AND {in_district('r.area_key', district)}" if district else ""
    rows = reader.rows(WAITING_SQL.format(where=where), **district_params(district))
    for row in rows:
        for name in TIMES:
            row[name] = local_iso(_aware(row[name]), tz)
    return rows


def _aware(value: Any) -> dt.datetime | None:
    """A stored instant (SQLite: text without a zone, in UTC) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
