"""Figures for the managers' dashboard: the partner scorecard, and where this month and year begin.

The dashboard's counts by service and district are the period report's (queries/report.py).
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from referrals.models.lifecycle import StepStatus
from referrals.queries.areas import district_params, in_district
from referrals.queries.reading import OPEN_SQL, Reader


def _in(district: str | None) -> dict[str, str]:
    return district_params(district)


def period_starts(now: dt.datetime, tz: Any) -> dict[str, dt.datetime]:
    """The start of this month and of this year, in local time, as UTC instants."""
    local = now.astimezone(tz)
    month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return {"month": month.astimezone(dt.UTC), "year": month.replace(month=1).astimezone(dt.UTC)}


SCORE_SQL = f"""
SELECT o.slug, o.name, s.seq, s.status, s.activated_at, s.completed_at, s.due_at
FROM step s
JOIN referral r ON r.id = s.referral_id
JOIN organization o ON o.id = r.organization_id
WHERE s.actor = 'partner' AND s.due_at IS NOT NULL {{district}}
  AND ((s.status = '{StepStatus.done.value}' AND s.completed_at >= :since)
       OR (s.status = '{StepStatus.active.value}' AND s.due_at < :now))
"""
LOAD_SQL = f"""
SELECT o.slug, o.name, COUNT(r.id) AS open_load
FROM organization o
LEFT JOIN referral r ON r.organization_id = o.id AND r.status IN ({OPEN_SQL}) {{district}}
WHERE o.active AND EXISTS (SELECT 1 FROM service s WHERE s.organization_id = o.id AND s.active)
GROUP BY o.slug, o.name ORDER BY o.name
"""


def scorecard(
    reader: Reader, *, since: dt.datetime, now: dt.datetime, district: str | None = None
) -> list[dict[str, Any]]:
    """Per active partner offering a service: median hours to acknowledge, % of its steps on
    time, open referrals; over every district, or one.

    A step counts if it was done since `since`, or is still waiting past its deadline (late).
    """
    only = f"AND {in_district('r.area_key', district)}" if district else ""
    cards = {
        r["slug"]: {**r, "ack_hours": [], "on_time": 0, "counted": 0}
        for r in reader.rows(LOAD_SQL.format(district=only), **_in(district))
    }
    for s in reader.rows(SCORE_SQL.format(district=only), since=since, now=now, **_in(district)):
        card = cards.get(s["slug"])
        if card is None:
            continue
        card["counted"] += 1
        done = s["status"] == StepStatus.done.value
        card["on_time"] += done and s["completed_at"] <= s["due_at"]
        if done and s["seq"] == 0 and s["activated_at"] is not None:
            card["ack_hours"].append((s["completed_at"] - s["activated_at"]).total_seconds() / 3600)
    out = []
    for card in cards.values():
        hours = card.pop("ack_hours")
        card["median_ack_hours"] = round(statistics.median(hours), 1) if hours else None
        card["acknowledged"] = len(hours)
        card["on_time_pct"] = (
            round(100 * card["on_time"] / card["counted"]) if card["counted"] else None
        )
        card["open_load"] = int(card["open_load"])
        out.append(card)
    return out
