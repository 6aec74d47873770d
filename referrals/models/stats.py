"""Figures for the managers' dashboard (and the period report): counts, partner scorecards.

Counts are "as of" the end of the period: a referral closed after the period counts as open in
it, so a past period's figures do not move when later events arrive.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from referrals.models.lifecycle import OPEN, Outcome, StepStatus
from referrals.models.reading import Reader

_OPEN = ", ".join(f"'{s.value}'" for s in sorted(OPEN))

COUNTS_SQL = f"""
SELECT r.pathway_key AS pathway, r.area_key AS district,
       COUNT(*) AS launched, COUNT(DISTINCT r.client_id) AS clients,
       SUM(CASE WHEN r.closed_at < :until AND r.outcome = '{Outcome.successful.value}'
           THEN 1 ELSE 0 END) AS successful,
       SUM(CASE WHEN r.closed_at < :until AND r.outcome = '{Outcome.not_successful.value}'
           THEN 1 ELSE 0 END) AS not_successful,
       SUM(CASE WHEN r.closed_at IS NULL OR r.closed_at >= :until THEN 1 ELSE 0 END) AS still_open
FROM referral r
WHERE r.launched_at >= :since AND r.launched_at < :until {{district}}
GROUP BY r.pathway_key, r.area_key
ORDER BY r.pathway_key, r.area_key
"""


def counts(
    reader: Reader, *, since: dt.datetime, until: dt.datetime, district: str | None = None
) -> list[dict[str, Any]]:
    """Per pathway and district (or one district): referrals launched in [since, until), the
    clients they were for, and how they stood at `until`."""
    sql = COUNTS_SQL.format(district="AND r.area_key = :district" if district else "")
    rows = reader.rows(sql, since=since, until=until, **_in(district))
    for r in rows:
        for k in ("launched", "clients", "successful", "not_successful", "still_open"):
            r[k] = int(r[k] or 0)
    return rows


def _in(district: str | None) -> dict[str, str]:
    return {"district": district} if district else {}


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
LEFT JOIN referral r ON r.organization_id = o.id AND r.status IN ({_OPEN}) {{district}}
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
    only = "AND r.area_key = :district" if district else ""
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
