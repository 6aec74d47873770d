"""The office's period report, computed in SQL over referrals, steps, events and the outbox.

Who is counted: the referrals launched in the period (local dates `first`..`last`, inclusive).
How they stood is read **as of the end of the period**: a referral closed after it counts as
open, a step done after it as not yet done. Re-running the report for a past period therefore
gives the same figures whatever happened since. The dashboard's counts are this module's
`counts()` with the end at "now", so the two agree by construction.

Working days between two instants follow the province's calendar (the days after the earlier
local date up to the later). SQL groups the spans by partner and local start and end dates, a
few thousand groups whatever the number of referrals; Python turns each into working days and
keeps per-partner histograms, from which the medians and 90th percentiles (nearest rank) come.
Memory therefore does not grow with the number of referrals.

As-of limits, read from the current rows: a referral on hold at the period's end, or a deadline
reset by a later resume, is judged by the step's current deadline.

More time granted on a step (usecases/referrals/extending.py) moves its deadline, so "on time"
counts the new one; each partner's `steps_extended` says on how many of its steps that happened
(granted by the end of the period; a refused request extends nothing).

Arrivals and no-shows (usecases/referrals/no_show.py): per partner, the cohort's referrals whose
client was recorded as arrived (the slip scanned) by the end of the period, and those recorded
as not having come (once per referral, however many times it was re-booked).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from referrals.config.fields import Channel
from referrals.config.pathways import ServiceGroup
from referrals.infra.calendar import WorkingCalendar
from referrals.models.bounds import check_day
from referrals.models.lifecycle import LEFT, Outcome, ReferralStatus, StepStatus
from referrals.queries.areas import Grouping, district_params, grouping, in_district
from referrals.queries.reading import Reader
from referrals.queries.views import areas, pathways

OK, NOT_OK = Outcome.successful.value, Outcome.not_successful.value
COUNTED = ("clients", "launched", "successful", "not_successful", "still_open", "overdue")


@dataclass(frozen=True)
class Period:
    """Local dates `first`..`last`, both included, in the province's time zone."""

    first: dt.date
    last: dt.date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        check_day(self.first, "the first day")
        check_day(self.last, "the last day")
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(), tzinfo=self.tz).astimezone(dt.UTC)

    @property
    def until(self) -> dt.datetime:
        end = self.last + dt.timedelta(days=1)
        return dt.datetime.combine(end, dt.time(), tzinfo=self.tz).astimezone(dt.UTC)


# Who is counted (launched in [:since, :until)) and their state at :asof (the end of the period,
# or now for a period not over yet). {where} adds a district; {area} is the area a record
# counts under, the units of one day (queries/areas.py `grouping`; positional GROUP BY, as the
# expression has parameters).
#
# Plans, measured at 100,000 referrals (benchmarks/bench_report.py): queries that read steps
# start from the step table ("step s CROSS JOIN referral r WHERE r.id = s.referral_id": SQLite
# keeps that order, PostgreSQL plans as it likes) and group by organisation id, joining names
# once at the end; SQLite otherwise drives from the launch-date index and probes steps per
# referral, 3-5x slower.
_COHORT = "r.launched_at >= :since AND r.launched_at < :until {where}"
_OPEN_AT_END = "(r.closed_at IS NULL OR r.closed_at >= :asof)"
_STEPS = "step s CROSS JOIN referral r"
_WAITING_AT_END = "s.activated_at < :asof AND (s.completed_at IS NULL OR s.completed_at >= :asof)"
COUNTS_SQL = f"""
SELECT r.pathway_key AS pathway, {{area}} AS district,
       COUNT(DISTINCT r.client_id) AS clients, COUNT(*) AS launched,
       SUM(CASE WHEN r.closed_at < :asof AND r.outcome = '{OK}' THEN 1 ELSE 0 END) AS successful,
       SUM(CASE WHEN r.closed_at < :asof AND r.outcome = '{NOT_OK}' THEN 1 ELSE 0 END)
           AS not_successful,
       SUM(CASE WHEN {_OPEN_AT_END} THEN 1 ELSE 0 END) AS still_open
FROM referral r WHERE {_COHORT}
GROUP BY 1, 2 ORDER BY 1, 2
"""
# Overdue at the end: open then, with its waiting step past its deadline. A referral has at most
# one step waiting at any instant (the unique index on active steps), so steps count referrals.
LATE_SQL = f"""
SELECT r.pathway_key AS pathway, {{area}} AS district, COUNT(*) AS overdue
FROM {_STEPS}
WHERE r.id = s.referral_id AND {_WAITING_AT_END} AND s.due_at < :asof
  AND {_COHORT} AND {_OPEN_AT_END}
GROUP BY 1, 2
"""
# People, not rows: distinct clients per service across districts, and overall.
CLIENTS_SQL = f"""
SELECT {{key}} COUNT(DISTINCT r.client_id) AS clients FROM referral r WHERE {_COHORT} {{group}}
"""
REASONS_SQL = f"""
SELECT r.pathway_key AS pathway, {{area}} AS district, r.organization_id AS partner,
       r.status, r.outcome_reason AS reason, COUNT(*) AS n
FROM referral r
WHERE {_COHORT} AND r.closed_at < :asof AND r.outcome = '{NOT_OK}'
GROUP BY 1, 2, 3, 4, 5
"""
PARTNERS_SQL = f"""
SELECT o.id, o.slug AS partner, o.name, o.name_en, p.launched, p.successful, p.still_open
FROM (SELECT r.organization_id, COUNT(*) AS launched,
             SUM(CASE WHEN r.closed_at < :asof AND r.outcome = '{OK}' THEN 1 ELSE 0 END)
                 AS successful,
             SUM(CASE WHEN {_OPEN_AT_END} THEN 1 ELSE 0 END) AS still_open
      FROM referral r WHERE {_COHORT} GROUP BY r.organization_id) p
JOIN organization o ON o.id = p.organization_id
ORDER BY o.name
"""
# Spans grouped by their local start and end dates: few groups (partners x days x days apart),
# turned into working days in Python with the province's calendar.
SPANS_SQL = """
SELECT r.organization_id AS partner, {start_day} AS a, {end_day} AS b, COUNT(*) AS k
FROM {source}
WHERE {cohort} AND {done}
GROUP BY r.organization_id, {start_day}, {end_day}
"""
ON_TIME_SQL = f"""
SELECT r.organization_id AS partner,
       SUM(CASE WHEN s.completed_at < :asof AND s.completed_at <= s.due_at THEN 1 ELSE 0 END)
           AS on_time,
       COUNT(*) AS counted
FROM {_STEPS}
WHERE r.id = s.referral_id AND {_COHORT} AND s.actor = 'partner' AND s.due_at IS NOT NULL
  AND ((s.status = '{StepStatus.done.value}' AND s.completed_at < :asof)
       OR ({_WAITING_AT_END} AND s.due_at < :asof))
GROUP BY r.organization_id
"""
# Steps of the cohort with more time granted by the end of the period, per partner.
EXTENDED_SQL = f"""
SELECT r.organization_id AS partner, COUNT(DISTINCT e.step_id) AS extended
FROM extension e JOIN referral r ON r.id = e.referral_id
WHERE e.status = 'granted' AND e.decided_at < :asof AND {_COHORT}
GROUP BY r.organization_id
"""
# Referrals of the cohort with an arrival, and with a no-show, recorded by the end, per partner.
ARRIVALS_SQL = f"""
SELECT r.organization_id AS partner,
       COUNT(DISTINCT CASE WHEN e.kind = 'referral.arrived' THEN r.id END) AS arrived,
       COUNT(DISTINCT CASE WHEN e.kind = 'referral.no_show' THEN r.id END) AS no_show
FROM event e JOIN referral r ON r.id = e.referral_id
WHERE e.kind IN ('referral.arrived', 'referral.no_show') AND e.at < :asof AND {_COHORT}
GROUP BY r.organization_id
"""
SENT_SQL = f"""
SELECT n.channel, COUNT(*) AS n FROM notification n {{join}}
WHERE n.status IN ({", ".join(sorted(f"'{s}'" for s in LEFT))}) AND n.sent_at >= :since AND n.sent_at < :until
{{where}} GROUP BY n.channel
"""
# What each channel billed, per local month: the months' bounds come bound as parameters, so
# the same CASE runs on both databases (queries/report.py `_costs`).
COSTS_SQL = f"""
SELECT n.channel, CASE {{months}} END AS month, COUNT(*) AS n, SUM(COALESCE(n.units, 0)) AS units
FROM notification n {{join}}
WHERE n.status IN ({", ".join(sorted(f"'{s}'" for s in LEFT))}) AND n.sent_at >= :since
  AND n.sent_at < :until {{where}}
GROUP BY 1, 2
"""
DEAD_SQL = """
SELECT COUNT(*) AS n FROM event e {join}
WHERE e.kind = 'message.dead' AND e.at >= :since AND e.at < :until {where}
"""


def _scoped(sql: str, district: str | None, **parts: str) -> str:
    return sql.format(
        where=f"AND {in_district('r.area_key', district)}" if district else "", **parts
    )


def counts(
    reader: Reader,
    *,
    since: dt.datetime,
    until: dt.datetime,
    district: str | None = None,
    areas_on: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Per pathway and district: the clients and referrals launched in [since, until) and how
    they stood at `until` (successful, not, open, overdue); with `areas_on`, each under the
    units in force that day (the dashboard: today's)."""
    groups = grouping(reader, areas_on) if areas_on else None
    bind = {"since": since, "until": until, "asof": until, **_in(district)}
    return _table(reader, bind, groups)


def _table(reader: Reader, bind: dict[str, Any], groups: Grouping | None) -> list[dict[str, Any]]:
    district, area = bind.get("district"), groups.sql if groups else "r.area_key"
    bind = bind | (groups.params if groups else {})
    late = {
        (r["pathway"], r["district"]): int(r["overdue"])
        for r in reader.rows(_scoped(LATE_SQL, district, area=area), **bind)
    }
    return [
        {**_ints(r), "overdue": late.get((r["pathway"], r["district"]), 0)}
        for r in reader.rows(_scoped(COUNTS_SQL, district, area=area), **bind)
    ]


def build_report(
    reader: Reader,
    *,
    period: Period,
    calendar: WorkingCalendar,
    now: dt.datetime,
    district: str | None = None,
    areas_on: dt.date | None = None,
    service_groups: Sequence[ServiceGroup] = (),
    prices: Mapping[Channel, int] | None = None,
) -> dict[str, Any]:
    """Every figure of the period report, as plain data (see referrals/reports for formats).
    A period not over yet is read as of `now`. Records count under the units in force at the
    period's end, or on `areas_on` (2020's districts for a period of 2026, through the
    succession: queries/areas.py)."""
    since, until = period.since, period.until
    asof = min(until, now)
    groups = grouping(reader, areas_on or period.last)
    bind = {"since": since, "until": until, "asof": asof, **_in(district)}
    rows = _table(reader, bind, groups)
    people, everyone = _clients(reader, district, bind)
    reasons, declines = _not_successful(reader, district, bind | groups.params, groups.sql)
    for row in rows:
        row["not_successful_by"] = dict(reasons[(row["pathway"], row["district"])])
    services = [
        {
            "pathway": key,
            **_summed([r for r in rows if r["pathway"] == key], clients=people[key]),
            "not_successful_by": dict(reasons[(key, "")]),
        }
        for key in sorted(people)
    ]
    total = _summed(rows, clients=everyone)
    grouped = _grouped(reader, district, bind, services, service_groups)
    partners = _partners(reader, period, calendar, district, bind, declines)
    return {
        "period": {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "since": since.isoformat(),
            "until": until.isoformat(),
            "as_of": asof.astimezone(period.tz).isoformat(timespec="minutes"),
            "district": district,
            "areas_as_of": groups.on.isoformat(),
        },
        "rows": rows,
        "services": services,
        "service_groups": grouped,
        "total": total,
        "partners": partners,
        "messages": _messages(reader, district, bind),
        "costs": _costs(reader, period, district, bind, prices or {}),
        "peer_groups": peer_groups(reader, district, bind),
        "names": {
            "pathways": {p["key"]: {"vi": p["name"], "en": p["name_en"]} for p in pathways(reader)},
            "districts": {
                **{a["key"]: {"vi": a["name"], "en": a["name_en"]} for a in areas(reader)},
                **groups.names,
            },
        },
    }


def _grouped(
    reader: Reader,
    district: str | None,
    bind: dict[str, Any],
    services: list[dict[str, Any]],
    groups: Sequence[ServiceGroup],
) -> list[dict[str, Any]]:
    """Per service group (pathways.yaml): its services' figures added up, with its people
    counted once however many of its services they used, and the services inside."""
    out = []
    for group in groups:
        keys = {f"pathway_{i}": key for i, key in enumerate(group.pathways)}
        inside = f"AND r.pathway_key IN ({', '.join(':' + k for k in keys)})"
        sql = _scoped(CLIENTS_SQL, district, key="", group=inside)
        (people,) = reader.rows(sql, **bind, **keys)
        lines = [s for s in services if s["pathway"] in group.pathways]
        out.append(
            {
                "key": group.key,
                "name": group.name,
                "name_en": group.name_en,
                **_summed(lines, clients=int(people["clients"])),
                "services": [s["pathway"] for s in lines],
            }
        )
    return out


def _clients(
    reader: Reader, district: str | None, bind: dict[str, Any]
) -> tuple[dict[str, int], int]:
    """Distinct clients per pathway (across districts), and overall."""
    people = {
        r["pathway"]: int(r["clients"])
        for r in reader.rows(
            _scoped(
                CLIENTS_SQL,
                district,
                key="r.pathway_key AS pathway,",
                group="GROUP BY r.pathway_key",
            ),
            **bind,
        )
    }
    (everyone,) = reader.rows(_scoped(CLIENTS_SQL, district, key="", group=""), **bind)
    return people, int(everyone["clients"])


def _not_successful(
    reader: Reader, district: str | None, bind: dict[str, Any], area: str
) -> tuple[dict[tuple[str, str], dict[str, int]], dict[int, dict[str, int]]]:
    """Unsuccessful closes by reason: per (pathway, district) and per pathway (district ""),
    and the declines per partner (organisation id)."""
    reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    declines: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in reader.rows(_scoped(REASONS_SQL, district, area=area), **bind):
        reason = r["reason"] or "other"
        for key in ((r["pathway"], r["district"]), (r["pathway"], "")):
            reasons[key][reason] += int(r["n"])
        if r["status"] == ReferralStatus.rejected.value:
            declines[r["partner"]][reason] += int(r["n"])
    return reasons, declines


def _partners(
    reader: Reader,
    period: Period,
    calendar: WorkingCalendar,
    district: str | None,
    bind: dict[str, Any],
    declines: dict[int, dict[str, int]],
) -> list[dict[str, Any]]:
    """Per partner: its counts, the working days it took to acknowledge and to complete, its
    steps done on time, and its declines by reason."""
    spans = {
        kind: _histograms(reader, period, calendar, district, bind, kind)
        for kind in ("acknowledge", "complete")
    }
    on_time = {r["partner"]: r for r in reader.rows(_scoped(ON_TIME_SQL, district), **bind)}
    extended_rows = reader.rows(_scoped(EXTENDED_SQL, district), **bind)
    extended = {r["partner"]: int(r["extended"]) for r in extended_rows}
    came = {r["partner"]: r for r in reader.rows(_scoped(ARRIVALS_SQL, district), **bind)}
    partners = []
    for p in reader.rows(_scoped(PARTNERS_SQL, district), **bind):
        org = p.pop("id")
        timely = on_time.get(org, {})
        counted = int(timely.get("counted") or 0)
        partners.append(
            {
                **_ints(p),
                **{name: _percentiles(h.get(org, {})) for name, h in spans.items()},
                "steps_counted": counted,
                "steps_on_time": int(timely.get("on_time") or 0),
                "on_time_pct": round(100 * int(timely["on_time"]) / counted) if counted else None,
                "steps_extended": extended.get(org, 0),
                "arrived": int((came.get(org) or {}).get("arrived") or 0),
                "no_show": int((came.get(org) or {}).get("no_show") or 0),
                "declines": dict(declines.get(org, {})),
            }
        )
    return partners


def _ints(row: dict[str, Any]) -> dict[str, Any]:
    """Counts as ints (SUM gives Decimal on PostgreSQL, None over no rows)."""
    return {k: int(v or 0) if k in COUNTED else v for k, v in row.items()}


def _in(district: str | None) -> dict[str, str]:
    """The district (read back by the queries that scope) and its areas' parameters."""
    return {"district": district, **district_params(district)} if district else {}


def _summed(rows: list[dict[str, Any]], *, clients: int) -> dict[str, int]:
    """Rows added up; clients are counted apart, as people (one may be in several rows)."""
    return {"clients": clients, **{c: sum(r[c] for r in rows) for c in COUNTED[1:]}}


def _local_day(column: str, reader: Reader, period: Period) -> str:
    tz = period.tz
    if reader.dialect == "postgresql":
        return f"CAST(({column} AT TIME ZONE '{tz.key}') AS DATE)"
    offsets = {tz.utcoffset(dt.datetime.combine(d, dt.time())) for d in (period.first, period.last)}
    if len(offsets) != 1:  # SQLite knows no zones; Vietnam has kept +07:00 since 1975
        raise ValueError(f"{tz.key} changes its UTC offset within the period")
    offset = offsets.pop()
    assert offset is not None  # a ZoneInfo gives every local time its offset
    minutes = int(offset.total_seconds() // 60)
    return f"date({column}, '{minutes:+d} minutes')"


def _histograms(
    reader: Reader,
    period: Period,
    calendar: WorkingCalendar,
    district: str | None,
    bind: dict[str, Any],
    kind: str,
) -> dict[int, dict[int, int]]:
    """Per partner (organisation id): {whole working days: how many} for acknowledging (the
    first step done) or completing (launch to a successful close), by :asof."""
    if kind == "acknowledge":
        source = _STEPS
        start, end = "s.activated_at", "s.completed_at"
        done = (
            f"r.id = s.referral_id AND s.seq = 0 AND s.status = '{StepStatus.done.value}'"
            " AND s.completed_at < :asof"
        )
    else:
        source = "referral r"
        start, end = "r.launched_at", "r.closed_at"
        done = f"r.outcome = '{OK}' AND r.closed_at < :asof"
    sql = SPANS_SQL.format(
        source=source,
        start_day=_local_day(start, reader, period),
        end_day=_local_day(end, reader, period),
        cohort=_scoped(_COHORT, district),
        done=done,
    )
    groups = reader.rows(sql, **bind)
    cumulative = _cumulative(calendar, [_day(r[x]) for r in groups for x in ("a", "b")])
    out: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in groups:
        days = cumulative[_day(r["b"])] - cumulative[_day(r["a"])]
        out[r["partner"]][days] += int(r["k"])
    return out


def _cumulative(calendar: WorkingCalendar, days: list[dt.date]) -> dict[dt.date, int]:
    """Working days from the earliest date up to each date, so that the working days between
    two dates (the later counted, the earlier not: the calendar's rule) are a subtraction."""
    if not days:
        return {}
    day, last, n, out = min(days), max(days), 0, {}
    while day <= last:
        n += calendar.is_working_day(day)
        out[day] = n  # working days in [first, day]
        day += dt.timedelta(days=1)
    return out


def _day(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _percentiles(histogram: dict[int, int]) -> dict[str, Any]:
    """n, median and p90 (nearest rank) of a {value: count} histogram."""
    n = sum(histogram.values())
    if not n:
        return {"n": 0, "median": None, "p90": None}
    ranks = {"median": math.ceil(0.5 * n), "p90": math.ceil(0.9 * n)}
    out: dict[str, Any] = {"n": n}
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        for name, rank in ranks.items():
            if name not in out and seen >= rank:
                out[name] = value
    return out


def months(period: Period) -> list[tuple[str, dt.datetime]]:
    """Each local month the period touches, as ("2026-11", where it ends in UTC)."""
    out, day = [], period.first.replace(day=1)
    while day <= period.last:
        nxt = (day + dt.timedelta(days=32)).replace(day=1)
        end = dt.datetime.combine(nxt, dt.time(), tzinfo=period.tz).astimezone(dt.UTC)
        out.append((day.strftime("%Y-%m"), end))
        day = nxt
    return out


def _costs(
    reader: Reader,
    period: Period,
    district: str | None,
    bind: dict[str, Any],
    prices: Mapping[Channel, int],
) -> list[dict[str, Any]]:
    """Messages and billed units (SMS segments, Zalo messages) per channel and local month, and
    what they cost at the province's prices (issue 24: Zalo and brandname SMS are paid)."""
    bounds = months(period)
    cases = " ".join(f"WHEN n.sent_at < :m{i} THEN :k{i}" for i in range(len(bounds)))
    params: dict[str, object] = {f"m{i}": end for i, (_, end) in enumerate(bounds)}
    params |= {f"k{i}": key for i, (key, _) in enumerate(bounds)}
    join = "JOIN referral r ON r.id = n.referral_id" if district else ""
    rows = reader.rows(_scoped(COSTS_SQL, district, months=cases, join=join), **bind, **params)
    out = []
    for r in sorted(rows, key=lambda r: (r["month"], r["channel"])):
        units, price = int(r["units"] or 0), prices.get(r["channel"])
        out.append(
            {
                "month": r["month"],
                "channel": r["channel"],
                "messages": int(r["n"]),
                "units": units,
                "price": price,
                "cost": units * price if price is not None else None,
            }
        )
    return out


def _messages(reader: Reader, district: str | None, bind: dict[str, Any]) -> dict[str, Any]:
    join = "JOIN referral r ON r.id = {}.referral_id"
    sent = reader.rows(
        _scoped(SENT_SQL, district, join=join.format("n") if district else ""), **bind
    )
    (dead,) = reader.rows(
        _scoped(DEAD_SQL, district, join=join.format("e") if district else ""), **bind
    )
    by_channel = {r["channel"]: int(r["n"]) for r in sent}
    return {"sent": by_channel, "sent_total": sum(by_channel.values()), "dead": int(dead["n"])}


# People peer groups brought in (issue 20, usecases/clients/intake.py): per peer group, the
# intakes received in the period (in the district, if one is asked) and the clients taken from
# them by the end of the period (people, not intakes: two intakes of one person are one client).
PEER_GROUPS_SQL = """
SELECT o.slug AS peer_group, o.name, o.name_en, COUNT(i.id) AS received,
       COUNT(DISTINCT CASE WHEN i.taken_at < :asof THEN i.client_id END) AS clients
FROM organization o
LEFT JOIN intake i ON i.organization_id = o.id
     AND i.created_at >= :since AND i.created_at < :until {where}
WHERE o.kind = 'peer_group'
GROUP BY o.id, o.slug, o.name, o.name_en
ORDER BY o.name
"""


def peer_groups(reader: Reader, district: str | None, bind: dict[str, Any]) -> list[dict[str, Any]]:
    """Per peer group: intakes received in the period, and clients taken from them."""
    where = f"AND {in_district('i.area_key', district)}" if district else ""
    sql = PEER_GROUPS_SQL.format(where=where)
    return [
        {**r, "received": int(r["received"] or 0), "clients": int(r["clients"] or 0)}
        for r in reader.rows(sql, **bind)
    ]
