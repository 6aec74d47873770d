"""The deadline sweep: reminders, overdue notices and escalation, as events and outbox rows.

Set-based: one indexed query reads only the active steps whose next alert has come
(`ix_step_next_alert`), a chunk at a time, and each chunk's events, messages and step cursors
are written in one transaction. Idempotent: a step's cursor moves past what fired in the same
transaction that writes it, and the rows are locked while a chunk works on them (PostgreSQL
`FOR UPDATE SKIP LOCKED`; on SQLite each chunk takes the write lock first), so two sweeps at
once, or one run twice, fire each alert once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session

from referrals.infra.context import Context
from referrals.infra.db import insert_many, is_postgres, transaction
from referrals.models.deadlines import ACTOR, Alert, due_now, ladder_of, schedule
from referrals.models.directory import Contact, Service
from referrals.models.errors import Conflict
from referrals.models.lifecycle import WORKING, MessageStatus, StepStatus
from referrals.models.people import Role, User
from referrals.models.types import utcnow
from referrals.models.workflow import Event, Notification, PathwayVersion, Referral, Step, SweepRun

CHUNK = 2000  # steps per transaction: memory stays flat however many are due
TEMPLATES = {
    "reminder": "step.reminder",
    "overdue": "step.overdue",
    "escalation": "step.escalation",
}
EVENTS = {"reminder": "step.reminder", "overdue": "step.overdue", "escalation": "step.escalated"}
KINDS = ("reminder", "overdue", "escalation")

_DUE = (
    select(
        Step.id,
        Step.key,
        Step.actor,
        Step.due_at,
        Step.alert_seq,
        Step.escalation_level,
        Referral.id.label("referral_id"),
        Referral.code,
        Referral.status,
        Referral.priority,
        Referral.pathway_key,
        Referral.pathway_version,
        Referral.organization_id,
        Referral.service_id,
        Referral.coordinator_id,
        Referral.area_key,
    )
    .join(Referral, Referral.id == Step.referral_id)
    .where(Step.status == StepStatus.active.value, Step.next_alert_at <= bindparam("now"))
    .order_by(Step.next_alert_at, Step.id)
)
_t = Step.__table__.c  # type: ignore[attr-defined]
_MOVE = (
    update(Step.__table__)  # type: ignore[arg-type]
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
    services: dict[int, Service]
    contacts: dict[int, list[Contact]]  # by organisation, rank order, inactive ones included
    users: dict[int, User]
    _alerts: dict[tuple[Any, ...], list[Alert]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> _Directory:
        contacts: dict[int, list[Contact]] = {}
        for c in session.scalars(select(Contact).order_by(Contact.rank, Contact.id)):
            contacts.setdefault(c.organization_id, []).append(c)
        return cls(
            definitions={
                (pv.key, pv.version): pv.definition
                for pv in session.scalars(select(PathwayVersion))
            },
            services={s.id: s for s in session.scalars(select(Service))},  # type: ignore[misc]
            contacts=contacts,
            users={u.id: u for u in session.scalars(select(User))},  # type: ignore[misc]
        )

    def alerts(self, row: Any, ctx: Context) -> list[Alert]:
        """A step's alerts; deadlines cluster (17:00 on the same days), so each is built once."""
        key = (row.pathway_key, row.pathway_version, row.key, row.due_at)
        found = self._alerts.get(key)
        if found is None:
            ladder = ladder_of(self.definitions[key[:2]], row.key)
            found = self._alerts[key] = schedule(ladder, row.due_at, ctx.calendar)
        return found

    def partner(self, org_id: int, *, backup: bool) -> tuple[list[Contact], list[str]]:
        """The partner's first active rank (or the next one), and why any rank was passed over."""
        everyone = self.contacts.get(org_id, [])
        ranks = sorted({c.rank for c in everyone if c.active})
        index = 1 if backup else 0
        if len(ranks) <= index:
            return [], [f"the partner has no active {'backup ' if backup else ''}contact"]
        wanted = ranks[index]
        skipped = [
            f"contact {c.id} (rank {c.rank}) is inactive"
            for c in everyone
            if not c.active and c.rank <= wanted
        ]
        return [c for c in everyone if c.active and c.rank == wanted], skipped

    def people(self, to: str, row: Any) -> tuple[list[Contact | User], list[str]]:
        """Who an alert goes to, and why anyone it should have reached is not among them."""
        partner_step = row.actor == "partner"
        if to == ACTOR and partner_step:
            return self.partner(row.organization_id, backup=False)  # type: ignore[return-value]
        if to == "partner_backup":
            if not partner_step:
                return [], ["the step is the coordinator's: no partner contact to escalate to"]
            return self.partner(row.organization_id, backup=True)  # type: ignore[return-value]
        if to in (ACTOR, "coordinator"):
            user = self.users.get(row.coordinator_id)
            if user is None or not user.active or not user.email:
                return [], [
                    f"the coordinator has no e-mail or is inactive ({user.username if user else '?'})"
                ]
            return [user], []
        managers = [
            u
            for u in self.users.values()
            if u.role == Role.manager.value and u.active and u.area_key in (None, row.area_key)
        ]
        skipped = [f"manager {u.username} has no e-mail" for u in managers if not u.email]
        if not managers:
            skipped.append(f"no active manager for {row.area_key}")
        return [u for u in managers if u.email], skipped


@dataclass
class SweepSummary:
    now: dt.datetime
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((*KINDS, "messages", "skipped", "steps"), 0)
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
        directory = _Directory.load(s)
    while True:
        with transaction(engine) as s:
            # Write first: on SQLite this takes the write lock before reading, so two sweeps
            # take turns instead of reading the same steps.
            s.execute(
                update(SweepRun).where(SweepRun.id == run_id).values(counts=dict(summary.counts))
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
    with transaction(engine) as s:
        s.execute(
            update(SweepRun)
            .where(SweepRun.id == run_id)
            .values(counts=dict(summary.counts), finished_at=utcnow())
        )
    return summary


def _fire(
    session: Session,
    rows: list[Any],
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
            recipients, skipped = directory.people(alert.to, row)
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
                        "to": [_who(r) for r in recipients],
                        **({"skipped": skipped} if skipped else {}),
                    },
                }
            )
            outbox += _messages(row, alert, recipients, directory, ctx, now, definition)
        reminded = sum(a.kind == "reminder" for a in fire)
        moves.append(_move(row, seq, next_at, level, reminded))
    result = session.connection().execute(_MOVE, moves)
    if 0 <= result.rowcount < len(moves):
        raise Conflict("another sweep moved these steps; nothing was written, run it again")
    insert_many(session, Event, events)
    insert_many(session, Notification, outbox)
    summary.counts["messages"] += len(outbox)


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


def _who(person: Contact | User) -> str:
    return f"contact:{person.id}" if isinstance(person, Contact) else f"user:{person.username}"


def _messages(
    row: Any,
    alert: Alert,
    recipients: list[Contact | User],
    directory: _Directory,
    ctx: Context,
    now: dt.datetime,
    definition: dict[str, Any],
) -> list[dict[str, Any]]:
    service = directory.services[row.service_id]
    step = next(s for s in definition["steps"] if s["key"] == row.key)
    days_late = ctx.calendar.working_days_between(row.due_at, now)
    out = []
    for person in recipients:
        contact = isinstance(person, Contact)
        language = person.language if contact else "vi"  # type: ignore[union-attr]
        vi = language == "vi"
        channels = (
            [ch for ch, address in (("sms", person.phone), ("email", person.email)) if address]  # type: ignore[union-attr]
            if contact
            else ["email"]
        )
        for channel in channels:
            out.append(
                {
                    "referral_id": row.referral_id,
                    "contact_id": person.id if contact else None,
                    "user_id": None if contact else person.id,
                    "channel": channel,
                    "template": TEMPLATES[alert.kind],
                    "language": language,
                    "context": {
                        "code": row.code,
                        "service": service.name if vi else service.name_en,
                        "step": row.key,
                        "step_name": step["name"] if vi else step["name_en"],
                        "due_at": row.due_at.isoformat(),
                        "urgent": row.priority == "urgent",
                        "level": alert.level,
                        "days_late": days_late,
                    },
                    "idempotency_key": (
                        f"{row.code}:{row.id}:{alert.kind}{alert.level}:{row.due_at.isoformat()}"
                        f":{_who(person)}:{channel}"
                    ),
                    "status": MessageStatus.queued.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return out


def sweep_and_seal(engine: Engine, *, ctx: Context, now: dt.datetime) -> dict[str, Any]:
    """The scheduled pass: fire what is due, then seal the new events into the audit chain."""
    from referrals.usecases.audit import seal

    summary = sweep(engine, ctx=ctx, now=now).as_dict()
    summary["sealed"] = seal(engine, vault=ctx.vault)
    return summary
