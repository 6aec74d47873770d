"""The deadline sweep: reminders, overdue notices and escalation, as events and outbox rows;
then the clients who did not come (usecases/referrals/no_show.py).

Set-based: one indexed query reads only the active steps whose next alert has come
(`ix_step_next_alert`), a chunk at a time, and each chunk's events, messages and step cursors
are written in one transaction. Idempotent: a step's cursor moves past what fired in the same
transaction that writes it, and the rows are locked while a chunk works on them (PostgreSQL
`FOR UPDATE SKIP LOCKED`; on SQLite each chunk takes the write lock first), so two sweeps at
once, or one run twice, fire each alert once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Row, Table, bindparam, select, update
from sqlmodel import Session, col

from referrals.infra.context import Context
from referrals.infra.db import insert_many, is_postgres, transaction
from referrals.models.deadlines import Alert, due_now, ladder_of, schedule
from referrals.models.directory import Contact, Service
from referrals.models.errors import Conflict
from referrals.models.lifecycle import WORKING, StepStatus
from referrals.models.people import User
from referrals.models.types import utcnow
from referrals.models.workflow import Event, PathwayVersion, Referral, Step, SweepRun
from referrals.notifiers import messages
from referrals.notifiers.messages import DueStep, People
from referrals.queries.lateness import counts_hours, how_late
from referrals.usecases.privacy.sweep import sweep_privacy
from referrals.usecases.referrals.no_show import sweep_no_shows

CHUNK = 2000  # steps per transaction: memory stays flat however many are due
EVENTS = {"reminder": "step.reminder", "overdue": "step.overdue", "escalation": "step.escalated"}
KINDS = ("reminder", "overdue", "escalation")

_DUE = (
    select(
        col(Step.id),
        col(Step.key),
        col(Step.actor),
        col(Step.due_at),
        col(Step.alert_seq),
        col(Step.escalation_level),
        col(Referral.id).label("referral_id"),
        col(Referral.code),
        col(Referral.status),
        col(Referral.priority),
        col(Referral.pathway_key),
        col(Referral.pathway_version),
        col(Referral.organization_id),
        col(Referral.service_id),
        col(Referral.coordinator_id),
        col(Referral.area_key),
    )
    .join(Referral, col(Referral.id) == col(Step.referral_id))
    .where(
        col(Step.status) == StepStatus.active.value,
        col(Step.next_alert_at) <= bindparam("now"),
    )
    .order_by(col(Step.next_alert_at), col(Step.id))
)
_steps: Table = Step.__table__  # type: ignore[attr-defined]  # SQLModel does not declare `__table__`
_t = _steps.c
_MOVE = (
    update(_steps)
    .where(_t.id == bindparam("b_id"), _t.alert_seq == bindparam("b_old"))
    .values(
        alert_seq=bindparam("b_seq"),
        next_alert_at=bindparam("b_next"),
        escalation_level=bindparam("b_level"),
        reminders_sent=_t.reminders_sent + bindparam("b_reminded"),
    )
)


@dataclass
class _Directory:
    """What recipients and names resolve against, loaded once a pass (small tables)."""

    definitions: dict[tuple[str, int], dict[str, Any]]
    services: dict[int | None, Service]  # keyed like the rows' ids (never None once stored)
    people: People
    _alerts: dict[tuple[Any, ...], list[Alert]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, on: dt.date | None = None) -> _Directory:
        return cls(
            definitions={
                (pv.key, pv.version): pv.definition
                for pv in session.scalars(select(PathwayVersion))
            },
            services={s.id: s for s in session.scalars(select(Service))},
            people=People.load(session, on),
        )

    def alerts(self, row: Any, ctx: Context) -> list[Alert]:
        """A step's alerts; deadlines cluster (17:00 on the same days), so each is built once."""
        key = (row.pathway_key, row.pathway_version, row.key, row.due_at)
        found = self._alerts.get(key)
        if found is None:
            ladder = ladder_of(self.definitions[key[:2]], row.key)
            found = self._alerts[key] = schedule(ladder, row.due_at, ctx.calendar)
        return found

    def recipients(self, to: str, row: Any) -> tuple[Sequence[Contact | User], list[str]]:
        return self.people.for_alert(
            to,
            partner_step=row.actor == "partner",
            org_id=row.organization_id,
            coordinator_id=row.coordinator_id,
            area=row.area_key,
        )


@dataclass
class SweepSummary:
    now: dt.datetime
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (*KINDS, "messages", "skipped", "steps", "no_show"), 0
        )
    )

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), **self.counts}


def sweep(
    engine: Engine,
    *,
    ctx: Context,
    now: dt.datetime,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> SweepSummary:
    """One pass: fire every alert whose time has come by `now`; record the pass's counts."""
    summary = SweepSummary(now)
    with transaction(engine) as s:
        run = SweepRun(now=now, started_at=utcnow())
        s.add(run)
        s.flush()
        run_id = run.id
        directory = _Directory.load(s, now.astimezone(ctx.tz).date())
    while True:
        with transaction(engine) as s:
            # Write first: on SQLite this takes the write lock before reading, so two sweeps
            # take turns instead of reading the same steps.
            s.execute(
                update(SweepRun)
                .where(col(SweepRun.id) == run_id)
                .values(counts=dict(summary.counts))
            )
            due = _DUE.limit(chunk)
            if is_postgres(s):
                due = due.with_for_update(skip_locked=True, of=Step)
            rows = s.execute(due, {"now": now}).all()
            if not rows:
                break
            _fire(s, rows, directory, ctx, now, summary)
        if progress:
            progress(summary.counts["steps"])
    summary.counts["no_show"] = sweep_no_shows(engine, ctx=ctx, now=now)
    # Data-protection work (usecases/privacy/sweep.py): late requests, breach clocks, retention.
    summary.counts.update(sweep_privacy(engine, ctx=ctx, now=now))
    with transaction(engine) as s:
        s.execute(
            update(SweepRun)
            .where(col(SweepRun.id) == run_id)
            .values(counts=dict(summary.counts), finished_at=utcnow())
        )
    return summary


def _fire(
    session: Session,
    rows: Sequence[Row[Any]],
    directory: _Directory,
    ctx: Context,
    now: dt.datetime,
    summary: SweepSummary,
) -> None:
    events: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    for row in rows:
        summary.counts["steps"] += 1
        if row.status not in WORKING or row.due_at is None:  # nothing to chase: park the cursor
            moves.append(_move(row, row.alert_seq, None, row.escalation_level, 0))
            continue
        definition = directory.definitions[(row.pathway_key, row.pathway_version)]
        alerts = directory.alerts(row, ctx)
        fire, seq, next_at = due_now(alerts, row.alert_seq, row.due_at, now)
        level = row.escalation_level
        for alert in fire:
            recipients, skipped = directory.recipients(alert.to, row)
            summary.counts[alert.kind] += 1
            summary.counts["skipped"] += len(skipped)
            level = max(level, alert.level)
            events.append(
                {
                    "referral_id": row.referral_id,
                    "client_id": None,
                    "step_id": row.id,
                    "kind": EVENTS[alert.kind],
                    "at": now,
                    "actor": "system:sweep",
                    "data": {
                        "step": row.key,
                        "level": alert.level,
                        "due_at": row.due_at.isoformat(),
                        "to": [messages.who(r) for r in recipients],
                        **({"skipped": skipped} if skipped else {}),
                    },
                }
            )
            outbox += messages.step_alert(
                kind=alert.kind,
                level=alert.level,
                about=_about(row, definition, ctx, now),
                recipients=recipients,
                service=directory.services[row.service_id],
                now=now,
                to=alert.to,
            )
        reminded = sum(a.kind == "reminder" for a in fire)
        moves.append(_move(row, seq, next_at, level, reminded))
    result = session.connection().execute(_MOVE, moves)
    if 0 <= result.rowcount < len(moves):
        raise Conflict("another sweep moved these steps; nothing was written, run it again")
    insert_many(session, Event, events)
    summary.counts["messages"] += messages.queue(session, outbox)


def _move(
    row: Any, seq: int, next_at: dt.datetime | None, level: int, reminded: int
) -> dict[str, Any]:
    return {
        "b_id": row.id,
        "b_old": row.alert_seq,
        "b_seq": seq,
        "b_next": next_at,
        "b_level": level,
        "b_reminded": reminded,
    }


def _about(row: Any, definition: dict[str, Any], ctx: Context, now: dt.datetime) -> DueStep:
    """The step as its alert tells it; lateness in the unit its deadline counts
    (queries/lateness.py: hours on the emergency steps)."""
    urgent = row.priority == "urgent"
    hours = counts_hours(definition, row.key, urgent)
    return DueStep(
        referral_id=row.referral_id,
        code=row.code,
        step_id=row.id,
        step=next(s for s in definition["steps"] if s["key"] == row.key),
        due_at=row.due_at,
        urgent=urgent,
        days_late=ctx.calendar.working_days_between(row.due_at, now),
        hours_late=how_late(row.due_at, now, hours=True).amount if hours else None,
    )


def sweep_and_seal(engine: Engine, *, ctx: Context, now: dt.datetime) -> dict[str, Any]:
    """The scheduled pass: fire what is due, then seal the new events into the audit chain."""
    from referrals.usecases.audit import seal

    summary = sweep(engine, ctx=ctx, now=now).as_dict()
    summary["sealed"] = seal(engine, vault=ctx.vault)
    return summary
