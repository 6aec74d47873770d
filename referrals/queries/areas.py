"""Areas across the 2025 reform, in SQL: a district filter that follows the areas within a
district and those that succeeded it, and a report's grouping by the units of one day.

A coordinator of Nha Trang city, which ended on 30/06/2025, keeps its referrals and works on the
wards that replaced it; a manager asking for the city's referrals gets those too. The policy
answers that from the province config (models/policy.py `area_scope`), for one record and for a
listing's filter alike.

A report puts 2020 beside 2026 by counting every record under the units in force on one day
(`grouping`): the period's end by default, or the day asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

from referrals.config.areas import regroup
from referrals.models.policy import area_scope

if TYPE_CHECKING:
    from referrals.queries.reading import Reader


def scope_of(district: str) -> list[str]:
    """DISTRICT and every area within or after it (models/policy.py `area_scope`)."""
    return sorted(area_scope(district))


def in_district(column: str, district: str) -> str:
    """`COLUMN IN (:district_0, ...)`: the column's area is DISTRICT, within it or after it;
    its parameters are `district_params(DISTRICT)`. A list of keys, not a recursive query, so
    the planner uses the column's index and statistics."""
    names = ", ".join(f":district_{i}" for i in range(len(scope_of(district))))
    return f"{column} IN ({names})"


def district_params(district: str | None) -> dict[str, str]:
    """The parameters `in_district` names (none without a district)."""
    return {f"district_{i}": k for i, k in enumerate(scope_of(district))} if district else {}


@dataclass(frozen=True)
class Grouping:
    """How a report groups records by area on one day (config/areas.py `regroup`): `sql`, an
    expression over `r.area_key` giving the group with `params` bound; each group's names."""

    on: dt.date
    sql: str
    params: dict[str, str]
    names: dict[str, dict[str, str]]


def grouping(reader: Reader, on: dt.date) -> Grouping:
    """The directory's areas regrouped under the units in force on ON."""
    rows = reader.rows(
        "SELECT key, name, name_en, parent_key, valid_from, valid_to FROM area ORDER BY key"
    )
    after: dict[str, list[str]] = {}
    for link in reader.rows("SELECT area_key, successor_key FROM area_successor"):
        after.setdefault(link["area_key"], []).append(link["successor_key"])
    areas = [
        SimpleNamespace(
            key=r["key"],
            parent=r["parent_key"],
            valid_from=_day(r["valid_from"]),
            valid_to=_day(r["valid_to"]),
            successors=sorted(after.get(r["key"], [])),
        )
        for r in rows
    ]
    named = {r["key"]: r for r in rows}
    # Only the areas referrals use (from the index): the expression stays short, and plain
    # `r.area_key` when no referral is under a unit of another day.
    used = {r["area_key"] for r in reader.rows("SELECT DISTINCT area_key FROM referral")}
    moved = {k: g for k, g in regroup(areas, on).items() if g != (k,) and k in used}
    whens, params = [], {}
    for i, (key, group) in enumerate(sorted(moved.items())):
        params[f"area_{i}"], params[f"group_{i}"] = key, "+".join(group)
        whens.append(f"WHEN :area_{i} THEN :group_{i}")
    sql = f"CASE r.area_key {' '.join(whens)} ELSE r.area_key END" if whens else "r.area_key"
    names = {
        "+".join(group): {
            lang: " + ".join(named[k][column] for k in group if k in named)
            for lang, column in (("vi", "name"), ("en", "name_en"))
        }
        for group in moved.values()
    }
    return Grouping(on, sql, params, names)


def _day(value: object) -> dt.date | None:
    """A DATE column as read: a date (PostgreSQL) or its ISO text (SQLite)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def records_out_of_force(reader: Reader, tz: dt.tzinfo) -> list[dict[str, object]]:
    """Per area with dates, the clients recorded and referrals launched under it on a day it
    was not in force (local days in TZ). None in a healthy installation: the engine refuses
    such records. Some after an upgrade mean a key changed meaning under the records (the
    bundled config of 2026 gives `nha-trang` to the ward, not the city of 2019-2025)."""
    found = []
    dated = reader.rows(
        "SELECT key, name, valid_from, valid_to FROM area"
        " WHERE valid_from IS NOT NULL OR valid_to IS NOT NULL ORDER BY key"
    )
    for area in dated:
        start, end = _day(area["valid_from"]), _day(area["valid_to"])
        bounds: dict[str, dt.datetime] = {}
        if start:
            bounds["start"] = dt.datetime.combine(start, dt.time(), tzinfo=tz)
        if end:
            bounds["end"] = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz)
        outside = " OR ".join(
            [*(["{at} < :start"] if start else []), *(["{at} >= :end"] if end else [])]
        )
        counts = {}
        for table, at in (("client", "created_at"), ("referral", "launched_at")):
            sql = f"SELECT COUNT(*) AS n FROM {table} WHERE area_key = :key AND ({outside})"
            (row,) = reader.rows(sql.format(at=at), key=area["key"], **bounds)
            counts[table] = int(row["n"])
        if any(counts.values()):
            found.append({**area, "clients": counts["client"], "referrals": counts["referral"]})
    return found
