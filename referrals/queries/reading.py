"""Read models for `list` and `show`, in SQL over a plain DB-API connection.

Why not the ORM: importing SQLAlchemy and building the SQLModel tables costs about a second on a
small machine, longer than the query. Read commands open the database read-only through the
driver (sqlite3 or psycopg) and pay only for what they read. The same `Reader` works on any DB-API
connection, e.g. `engine.raw_connection()` in a process that has the ORM loaded anyway.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from referrals.models.errors import NotFound
from referrals.queries.areas import district_params, in_district
from referrals.queries.lateness import counts_hours, escalated_to, how_late

if TYPE_CHECKING:
    from referrals.infra.calendar import WorkingCalendar
from referrals.models.lifecycle import OPEN, WORKING, MessageStatus, StepStatus
from referrals.models.policy import User as Staff
from referrals.models.policy import require_area

TIME_COLUMNS = frozenset(
    {
        "launched_at",
        "closed_at",
        "due_at",
        "next_due_at",
        "completed_at",
        "at",
        "sent_at",
        "next_attempt_at",
        "created_at",
        "now",
        "finished_at",
        "activated_at",
        "granted_at",
        "withdrawn_at",
    }
)
JSON_COLUMNS = frozenset({"data", "counts", "hours"})
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite (naive UTC here)
PAGE = 900  # ids per IN (...): below SQLite's oldest bind-parameter limit
DEFAULT_LIMIT = 100


class Reader:
    """Runs `:name`-style SQL on sqlite3 or psycopg and returns rows as dicts with aware UTC times."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.connection, self.dialect = connection, dialect

    @classmethod
    def open(cls, url: str) -> Reader:
        """Read-only connection from an engine URL (`sqlite:///path`, `postgresql+psycopg://...`)."""
        if url.startswith("sqlite:///"):
            import sqlite3

            path = url.removeprefix("sqlite:///")
            if not Path(path).is_file():
                from referrals.config.settings import NoDatabase

                raise NoDatabase(Path(path))
            # mode=ro: never a new empty database, even if the file goes in between.
            return cls(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True), "sqlite")
        if url.startswith(("postgresql+psycopg://", "postgresql://")):
            import psycopg

            conn = psycopg.connect(
                url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
            )
            conn.read_only = True
            return cls(conn, "postgresql")
        raise ValueError(f"unsupported database URL for reading: {url.split(':', 1)[0]}")

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def param(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and self.dialect == "sqlite":
            return value.astimezone(dt.UTC).strftime(SQLITE_TIME)
        return value

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        if self.dialect == "postgresql":
            sql = re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
        cursor = self.connection.cursor()
        cursor.execute(sql, {k: self.param(v) for k, v in params.items()})
        names = [d[0] for d in cursor.description]
        out = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        cursor.close()
        for name in TIME_COLUMNS.intersection(names):
            for row in out:
                row[name] = _utc(row[name])
        for name in JSON_COLUMNS.intersection(names):
            for row in out:
                if isinstance(row[name], str):
                    row[name] = json.loads(row[name])
        return out


@dataclass(frozen=True)
class Person:
    """The acting user as the policy needs them (models/policy.py), read without the ORM."""

    username: str
    role: str
    area_key: str | None


def acting_user(reader: Reader, username: str) -> Person:
    found = reader.rows(
        'SELECT username, role, area_key FROM "user" WHERE username = :u AND active',
        u=username,
    )
    if not found:
        raise NotFound(f"no active user {username!r} (set REFERRALS_USER or run `referrals init`)")
    return Person(**found[0])


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def local_iso(value: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


_WORKING = ", ".join(f"'{s.value}'" for s in sorted(WORKING))
OPEN_SQL = ", ".join(f"'{s.value}'" for s in sorted(OPEN))  # for `status IN (...)`
# Overdue: waiting on an active step whose deadline has passed. Computed, never stored; the SQL
# below and `is_overdue` are the two spellings of this one rule.
OVERDUE_SQL = f"r.status IN ({_WORKING}) AND a.due_at < :now"


def count_overdue(reader: Reader, *, now: dt.datetime, district: str | None = None) -> int:
    """How many referrals are overdue now (in one district, or all)."""
    sql = (
        "SELECT COUNT(*) AS n FROM referral r JOIN step a ON a.referral_id = r.id"
        f" AND a.status = '{StepStatus.active.value}' WHERE {OVERDUE_SQL}"
    )
    if district is not None:
        sql += f" AND {in_district('r.area_key', district)}"
    return int(reader.rows(sql, now=now, **district_params(district))[0]["n"])


def count_unconfirmed(reader: Reader, *, now: dt.datetime) -> int:
    """Messages sent on a channel that reports delivery whose receipt is overdue (issue 24): the
    gateway took them, and nothing says they reached the phone."""
    sql = (
        "SELECT COUNT(*) AS n FROM notification"
        f" WHERE status = '{MessageStatus.sent.value}' AND confirm_by <= :now"
    )
    return int(reader.rows(sql, now=now)[0]["n"])


def is_overdue(status: str, due_at: dt.datetime | None, now: dt.datetime) -> bool:
    return due_at is not None and due_at < now and status in WORKING


LIST_SQL = f"""
SELECT r.id, r.code, r.status, r.priority, r.pathway_key AS pathway, r.pathway_version,
       r.area_key AS district, r.launched_at, r.closed_at, r.outcome, r.outcome_reason, r.version,
       o.slug AS partner, o.name AS partner_name, sv.name AS service, c.code AS client, u.username AS coordinator,
       u.full_name AS coordinator_name, a.key AS active_step, a.due_at AS next_due_at, a.escalation_level
FROM referral r
JOIN organization o ON o.id = r.organization_id
JOIN service sv ON sv.id = r.service_id
JOIN client c ON c.id = r.client_id
JOIN "user" u ON u.id = r.coordinator_id
LEFT JOIN step a ON a.referral_id = r.id AND a.status = '{StepStatus.active.value}'
"""


def list_referrals(
    reader: Reader,
    *,
    tz: ZoneInfo,
    now: dt.datetime,
    overdue: bool = False,
    status: str | None = None,
    partner: str | None = None,
    district: str | None = None,
    code: str | None = None,
    coordinator: str | None = None,
    client: str | None = None,
    open_only: bool = False,
    by_due: bool = False,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    calendar: WorkingCalendar | None = None,
) -> list[dict[str, Any]]:
    """Referrals with their steps: newest first, or most late first with `overdue` (the
    longest past its deadline first; next deadline first with `by_due`, those with no deadline
    last). Each names its coordinator (`coordinator`, and `coordinator_name` for people).

    `limit` 0 means all. A late referral says how late in its step's unit (`late_unit`: "hours"
    on hour-counted steps, else "working_days"; `hours_late`; with a `calendar`, `days_late`
    in working days), and an escalated one whom its level told (`escalated_to`).
    """
    where: list[str] = []
    params: dict[str, object] = {}
    for column, value in (
        ("r.status", status),
        ("o.slug", partner),
        ("r.code", code),
        ("u.username", coordinator),
        ("c.code", client),
    ):
        if value is not None:
            where.append(f"{column} = :{column[2:]}")
            params[column[2:]] = value
    if district is not None:
        where.append(in_district("r.area_key", district))
        params.update(district_params(district))
    if open_only:
        where.append(f"r.status IN ({OPEN_SQL})")
    if overdue:
        where.append(OVERDUE_SQL)
        params["now"] = now
    sql = LIST_SQL + (" WHERE " + " AND ".join(where) if where else "")
    if overdue or by_due:
        sql += " ORDER BY CASE WHEN a.due_at IS NULL THEN 1 ELSE 0 END, a.due_at, r.id"
    else:
        sql += " ORDER BY r.launched_at DESC, r.id DESC"
    if limit:
        sql += " LIMIT :limit OFFSET :offset"
        params.update(limit=limit, offset=offset)
    rows = reader.rows(sql, **params)
    steps = _steps(reader, [r["id"] for r in rows], everything=not (where or limit), tz=tz)
    for r in rows:
        r["overdue"] = is_overdue(r["status"], r["next_due_at"], now)
        if calendar is not None:
            late = r["overdue"] and r["next_due_at"] is not None
            r["days_late"] = calendar.working_days_between(r["next_due_at"], now) if late else 0
    _lateness(reader, rows, now)
    for r in rows:
        for name in ("launched_at", "closed_at", "next_due_at"):
            r[name] = local_iso(r[name], tz)
        r["steps"] = steps.get(r.pop("id"), [])
    return rows


def definitions(
    reader: Reader, versions: Iterable[tuple[str, int]] | None = None
) -> dict[tuple[str, int], dict[str, Any]]:
    """Pathway versions' definitions (their steps, deadlines, ladders) by (key, version): the
    ones asked for, or all (a province has a few dozen)."""
    wanted = None if versions is None else set(versions)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for row in reader.rows("SELECT key, version, definition FROM pathwayversion"):
        if wanted is None or (row["key"], row["version"]) in wanted:
            value = row["definition"]
            found[(row["key"], row["version"])] = (
                json.loads(value) if isinstance(value, str) else value
            )
    return found


def _lateness(reader: Reader, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """Each row's lateness in its step's unit, and whom its escalation level told
    (queries/lateness.py); the definitions are read only when a row is late or escalated."""
    for r in rows:
        r["late_unit"], r["hours_late"], r["escalated_to"] = None, 0, None
    busy = [r for r in rows if r["overdue"] or (r["escalation_level"] or 0) > 0]
    if not busy:
        return
    known = definitions(reader, {(r["pathway"], r["pathway_version"]) for r in busy})
    for r in busy:
        definition = known.get((r["pathway"], r["pathway_version"]))
        step = r["active_step"]
        r["escalated_to"] = escalated_to(definition, step, r["escalation_level"])
        if r["overdue"] and r["next_due_at"] is not None:
            hours = counts_hours(definition, step, r["priority"] == "urgent")
            r["late_unit"] = "hours" if hours else "working_days"
            r["hours_late"] = how_late(r["next_due_at"], now, hours=True).amount


def _steps(
    reader: Reader, ids: Sequence[int], *, everything: bool, tz: ZoneInfo
) -> dict[int, list[dict[str, Any]]]:
    sql = (
        "SELECT referral_id, key, actor, status, due_at, completed_at, escalation_level FROM step"
        " {where} ORDER BY referral_id, seq"
    )
    batches: Iterable[Sequence[int]] = (
        [ids] if everything else (ids[i : i + PAGE] for i in range(0, len(ids), PAGE))
    )
    out: dict[int, list[dict[str, Any]]] = {}
    for batch in batches:
        if everything:
            found = reader.rows(sql.format(where=""))
        else:
            names = {f"id{i}": v for i, v in enumerate(batch)}
            found = reader.rows(
                sql.format(where=f"WHERE referral_id IN ({', '.join(':' + n for n in names)})"),
                **names,
            )
        for s in found:
            ref = s.pop("referral_id")
            s["due_at"], s["completed_at"] = (
                local_iso(s["due_at"], tz),
                local_iso(s["completed_at"], tz),
            )
            out.setdefault(ref, []).append(s)
    return out


def show_referral(
    reader: Reader,
    *,
    code: str,
    tz: ZoneInfo,
    now: dt.datetime,
    calendar: WorkingCalendar | None = None,
) -> dict[str, Any]:
    """One referral with its steps, its timeline of events and its messages (with a
    `calendar`, how many working days late, as `list_referrals`)."""
    found = list_referrals(reader, tz=tz, now=now, code=code, limit=1, calendar=calendar)
    if not found:
        raise NotFound(f"unknown referral {code!r}")
    summary = found[0]
    (ref,) = reader.rows("SELECT id FROM referral WHERE code = :code", code=code)
    events = reader.rows(
        "SELECT kind, at, actor, data FROM event WHERE referral_id = :id ORDER BY at, id",
        id=ref["id"],
    )
    summary["events"] = [{**e, "at": local_iso(e["at"], tz)} for e in events]
    summary["messages"] = list_messages(reader, tz=tz, referral_id=ref["id"], limit=0)
    return summary


MESSAGES_SQL = """
SELECT n.id, n.channel, n.status, n.template, n.attempts, n.created_at, n.next_attempt_at,
       n.sent_at, n.last_error, r.code AS referral, o.slug AS partner,
       COALESCE(c.name, u.username) AS "to", COALESCE(c.name, u.full_name) AS to_name,
       COALESCE(c.role, u.role) AS role
FROM notification n
LEFT JOIN referral r ON r.id = n.referral_id
LEFT JOIN contact c ON c.id = n.contact_id
LEFT JOIN organization o ON o.id = c.organization_id
LEFT JOIN "user" u ON u.id = n.user_id
"""


def referral_for(
    reader: Reader,
    by: Staff,
    *,
    code: str,
    tz: ZoneInfo,
    now: dt.datetime,
    calendar: WorkingCalendar | None = None,
) -> dict[str, Any]:
    """`show_referral` for someone who may see it; to anyone else, as if it did not exist."""
    found = show_referral(reader, code=code, tz=tz, now=now, calendar=calendar)
    require_area(by, found["district"], what=f"referral {code!r}", act=False)
    return found


def list_messages(
    reader: Reader,
    *,
    tz: ZoneInfo,
    status: str | None = None,
    referral_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Outbox rows with their delivery state; a referral's oldest first, else newest first."""
    where: list[str] = []
    params: dict[str, object] = {}
    if status is not None:
        where.append("n.status = :status")
        params["status"] = status
    if referral_id is not None:
        where.append("n.referral_id = :referral_id")
        params["referral_id"] = referral_id
    sql = MESSAGES_SQL + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY n.id" if referral_id is not None else " ORDER BY n.id DESC"
    if limit:
        sql += " LIMIT :limit"
        params["limit"] = limit
    rows = reader.rows(sql, **params)
    for m in rows:
        for name in ("created_at", "next_attempt_at", "sent_at"):
            m[name] = local_iso(m[name], tz)
    return rows


def list_sweeps(reader: Reader, *, tz: ZoneInfo, limit: int = 20) -> list[dict[str, Any]]:
    """The deadline sweep's last passes, newest first: the instant, and what each fired."""
    rows = reader.rows(
        "SELECT id, now, started_at, finished_at, counts FROM sweeprun ORDER BY id DESC LIMIT :n",
        n=limit,
    )
    for r in rows:
        r["now"], r["finished_at"] = local_iso(r["now"], tz), local_iso(r["finished_at"], tz)
        r["started_at"] = local_iso(_utc(r["started_at"]), tz)
    return rows
