"""The client did not come: recorded by the partner or by the sweep, decided by the coordinator.

A no-show pauses the referral (the lifecycle's `no_show` move, to on-hold) with the step's
ladder stopped, and tells the coordinator, who chooses from the referral's page:
- have the client reminded through a peer educator (`remind_through_peer`: the group's first
  contacts get a code and the office's phone, never who the client is); the referral waits on;
- book again (`rebook`): back where it was, the step due at the end of the chosen day, its
  ladder restarted, the partner told;
- close it as `client_unreachable` (the ordinary `fail` action of `advance`).

The sweep records a no-show only where the pathway says which step the client must come in for
(`no_show` in pathways.yaml), the slip was printed (else no arrival could ever be recorded), and
that step is `after` past its deadline (or its appointment) with no arrival recorded since it
began and no request for more time waiting; it checks again under the referral's lock. An
arrival never moves the referral: whoever holds the slip can record one, so after a no-show it
is the coordinator who re-books. Each no-show is one event and one message to the coordinator.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, exists, or_, select
from sqlmodel import Session, col

from referrals.config.province import DueRule
from referrals.infra.context import Context
from referrals.infra.db import transaction
from referrals.models.directory import Organization
from referrals.models.errors import Conflict, DomainError, IllegalTransition, NotFound
from referrals.models.intake import Intake
from referrals.models.lifecycle import Reason, ReferralStatus, StepStatus
from referrals.models.policy import SYSTEM, Acting, PartnerContact, actor_of, require_referral
from referrals.models.workflow import (
    Event,
    Extension,
    ExtensionStatus,
    PathwayVersion,
    Referral,
    Step,
)
from referrals.notifiers import messages
from referrals.usecases.referrals.advancing import Mover, flush_moves, get_referral
from referrals.usecases.referrals.steps import cancel_reminders, coordinator_step_name

ARRIVED = "referral.arrived"
NO_SHOW = "referral.no_show"
REBOOKED = "referral.rebooked"
PRINTED = "slip.printed"
LONGEST_REBOOK = dt.timedelta(days=90)


class Rebooking(BaseModel):
    """The coordinator's new date for the client to come (a local day, after today)."""

    model_config = ConfigDict(extra="forbid")

    on: dt.date
    version: int | None = None  # the referral's version the page showed


def record_no_show(
    session: Session,
    *,
    code: str,
    by: Acting,
    ctx: Context,
    now: dt.datetime,
    via: Literal["link", "sweep"],
    step_key: str | None = None,
    observed_due: dt.datetime | None = None,
) -> Referral:
    """The client did not come for the partner's current step (after acknowledge): pause the
    referral, stop the step's ladder, cancel its reminders, tell the coordinator. The sweep
    passes the deadline it judged by: under the lock, a deadline moved since, an arrival or a
    request for more time makes it IllegalTransition, and nothing is written."""
    referral = get_referral(session, code, for_update=True)
    require_referral(
        by, code=code, area_key=referral.area_key, organization_id=referral.organization_id
    )
    m = Mover(session, referral, actor_of(by), now, ctx)
    active = m.active
    if active is None or active.actor != "partner" or active.seq == 0:
        raise IllegalTransition(
            f"referral {code} has no step the client was to come for", key="no_show_step"
        )
    if step_key is not None and step_key != active.key:
        raise IllegalTransition(f"step {step_key!r} is not the active step", key="not_active")
    if observed_due is not None and not _still_missed(session, active, observed_due):
        raise IllegalTransition(f"referral {code} moved since the sweep looked", key="moved")
    referral.updated_at = now
    m.move("no_show", reason=Reason.no_show.value, step=active.key, via=via)
    active.next_alert_at = None
    assert referral.id is not None and active.due_at is not None  # an active step is due
    cancel_reminders(session, referral.id, active.key)
    event = Event(
        referral_id=referral.id,
        step_id=active.id,
        kind=NO_SHOW,
        at=now,
        actor=actor_of(by),
        data={"step": active.key, "via": via, "due_at": active.due_at.isoformat()},
    )
    session.add(event)
    flush_moves(session, code)
    assert event.id is not None
    partner = session.get(Organization, referral.organization_id)
    messages.no_show(
        session,
        referral=referral,
        context={
            "code": code,
            "partner": partner.name if partner else "",
            "step": active.key,
            "step_name": coordinator_step_name(session, referral, active.key),
            "due_at": active.due_at.isoformat(),
            "via": via,
        },
        event_id=event.id,
        now=now,
    )
    return referral


def _still_missed(session: Session, step: Step, observed_due: dt.datetime) -> bool:
    """The step the sweep judged is as it was: same deadline, no arrival since it began, no
    request for more time waiting."""
    if step.due_at != observed_due:
        return False
    came = session.scalars(
        select(col(Event.id)).where(
            col(Event.referral_id) == step.referral_id,
            col(Event.kind) == ARRIVED,
            col(Event.at) >= step.activated_at,
        )
    ).first()
    asked = session.scalars(
        select(col(Extension.id)).where(
            col(Extension.step_id) == step.id,
            col(Extension.status) == ExtensionStatus.requested.value,
        )
    ).first()
    return came is None and asked is None


def waiting_after_no_show(session: Session, referral: Referral) -> bool:
    """Is the referral paused because the client did not come (not paused for another reason)?"""
    if referral.status != ReferralStatus.on_hold.value:
        return False
    last_hold = session.scalars(
        select(Event)
        .where(col(Event.referral_id) == referral.id, col(Event.kind) == "referral.on-hold")
        .order_by(col(Event.id).desc())
        .limit(1)
    ).first()
    return last_hold is not None and last_hold.data.get("reason") == Reason.no_show.value


def rebook(
    session: Session,
    *,
    code: str,
    booking: Rebooking,
    by: Acting,
    ctx: Context,
    now: dt.datetime,
) -> Referral:
    """Book again after a no-show: the referral goes back to where it was, its step due at the
    end of the chosen office day with the ladder restarted, and the partner is told."""
    referral = _staff_referral(session, code, by, booking.version)
    today = now.astimezone(ctx.tz).date()
    if booking.on <= today:
        raise DomainError("the new date must be after today", key="date_not_after_today")
    if booking.on - today > LONGEST_REBOOK:
        raise DomainError("the new date is more than 90 days away", key="date_too_far")
    m = Mover(session, referral, actor_of(by), now, ctx)
    m.move("rebook", day=booking.on.isoformat())
    m.event(REBOOKED, m.active, day=booking.on.isoformat())
    _restart(m, ctx.calendar.closing(booking.on), "rebooked")
    flush_moves(session, code)
    return referral


def remind_through_peer(
    session: Session,
    *,
    code: str,
    group_id: int,
    by: Acting,
    ctx: Context,
    now: dt.datetime,
    office_phone: str,
) -> str:
    """Ask the peer group that brought the client in to remind them, by the introduction's
    code (the one they know), once per no-show. Only that group: another would have to ask
    around for whoever holds a code, which could out the person. Returns the code given."""
    referral = _staff_referral(session, code, by, None)
    group = session.get(Organization, group_id)
    intake = session.scalars(
        select(col(Intake.code)).where(
            col(Intake.client_id) == referral.client_id,
            col(Intake.organization_id) == group_id,
        )
    ).first()
    if group is None or not group.active or group.kind != "peer_group" or intake is None:
        raise NotFound("no peer group brought this client in", key="not_their_client")
    missed = session.scalars(
        select(col(Event.id))
        .where(col(Event.referral_id) == referral.id, col(Event.kind) == NO_SHOW)
        .order_by(col(Event.id).desc())
        .limit(1)
    ).one()
    asked = session.scalars(
        select(col(Event.id)).where(
            col(Event.referral_id) == referral.id,
            col(Event.kind) == "referral.peer_reminded",
            col(Event.id) > missed,
            col(Event.data)["group"].as_integer() == group_id,
        )
    ).first()
    if asked is not None:  # a double click, or a second press: told once per no-show
        return intake
    given = intake
    event = Event(
        referral_id=referral.id,
        kind="referral.peer_reminded",
        at=now,
        actor=actor_of(by),
        data={"group": group.id, "code": given, "no_show": missed},
    )
    session.add(event)
    session.flush()
    assert event.id is not None
    messages.remind_client(
        session,
        referral=referral,
        group=group,
        code=given,
        office_phone=office_phone,
        event_id=event.id,
        now=now,
    )
    return given


def peer_groups(session: Session, referral: Referral) -> list[tuple[int, str]]:
    """The active peer groups that brought this client in, as (id, name): the only ones who
    can be asked to remind them."""
    groups = session.scalars(
        select(Organization)
        .join(Intake, col(Intake.organization_id) == col(Organization.id))
        .where(
            col(Intake.client_id) == referral.client_id,
            col(Organization.kind) == "peer_group",
            col(Organization.active),
        )
        .distinct()
        .order_by(col(Organization.name))
    )
    return [(g.id, g.name) for g in groups if g.id is not None]


def sweep_no_shows(engine: Engine, *, ctx: Context, now: dt.datetime) -> int:
    """Record a no-show for every client who did not come: the pathway's `no_show.step` active
    and `no_show.after` past its deadline (or past the appointment the partner gave, until the
    step's deadline is reset), nothing arrived. Each in its own transaction; one another actor
    moved first (answered, arrived, paused) is left as it is."""
    with transaction(engine) as s:
        rules = {
            (key, version): definition["no_show"]
            for key, version, definition in s.execute(
                select(
                    col(PathwayVersion.key),
                    col(PathwayVersion.version),
                    col(PathwayVersion.definition),
                )
            )
            if definition.get("no_show")
        }
        booked = {rule["step"] for rule in rules.values() if rule.get("appointment")}
        candidates = s.execute(
            select(
                col(Referral.id),
                col(Referral.code),
                col(Referral.pathway_key),
                col(Referral.pathway_version),
                col(Step.key),
                col(Step.due_at),
            )
            .join(Referral, col(Referral.id) == col(Step.referral_id))
            .where(
                col(Step.status) == StepStatus.active.value,
                col(Step.actor) == "partner",
                or_(col(Step.due_at) <= now, col(Step.key).in_(booked)),
                col(Referral.status).in_(
                    [ReferralStatus.accepted.value, ReferralStatus.in_progress.value]
                ),
                # an arrival since the step began; a slip, without which none could be recorded
                ~exists().where(
                    col(Event.referral_id) == col(Referral.id),
                    col(Event.kind) == ARRIVED,
                    col(Event.at) >= col(Step.activated_at),
                ),
                exists().where(
                    col(Event.referral_id) == col(Referral.id), col(Event.kind) == PRINTED
                ),
                ~exists().where(
                    col(Extension.step_id) == col(Step.id),
                    col(Extension.status) == ExtensionStatus.requested.value,
                ),
            )
        ).all()
        watched = [c for c in candidates if rules.get((c[2], c[3]), {}).get("step") == c[4]]
        appointments = _appointments(
            s, {c[0]: rules[(c[2], c[3])]["appointment"] for c in watched if c[4] in booked}
        )
    recorded = 0
    for referral_id, code, pathway, version, key, due_at in watched:
        rule = rules[(pathway, version)]
        after = DueRule.model_validate(rule.get("after") or {"working_days": 2})
        day = appointments.get(referral_id)
        if ctx.calendar.shift(ctx.calendar.closing(day) if day else due_at, after) > now:
            continue
        try:
            with transaction(engine) as s:
                record_no_show(
                    s,
                    code=code,
                    by=SYSTEM,
                    ctx=ctx,
                    now=now,
                    via="sweep",
                    step_key=key,
                    observed_due=due_at,
                )
            recorded += 1
        except (Conflict, IllegalTransition):  # moved meanwhile: nothing to record
            continue
    return recorded


def _appointments(session: Session, steps: dict[int, str]) -> dict[int, dt.date]:
    """The appointment each referral's partner gave (the date answered with step `steps[id]`),
    unless a deadline was reset since (re-booked, resumed, more time): then the deadline rules."""
    if not steps:
        return {}
    found: dict[int, dt.date] = {}
    events = session.execute(
        select(col(Event.referral_id), col(Event.kind), col(Event.data))
        .where(
            col(Event.referral_id).in_(list(steps)),
            col(Event.kind).in_(["link.answered", "step.due_reset"]),
        )
        .order_by(col(Event.id))
    )
    for referral_id, kind, data in events:
        if kind == "step.due_reset":
            found.pop(referral_id, None)
        elif data.get("step") == steps[referral_id] and data.get("on"):
            found[referral_id] = dt.date.fromisoformat(data["on"])
    return found


def _staff_referral(session: Session, code: str, by: Acting, version: int | None) -> Referral:
    """The referral waiting after a no-show, for a staff member who may act on it."""
    if isinstance(by, PartnerContact):
        raise DomainError("only the office decides after a no-show", key="staff_only")
    referral = get_referral(session, code, for_update=True)
    require_referral(
        by, code=code, area_key=referral.area_key, organization_id=referral.organization_id
    )
    if version is not None and version != referral.version:
        raise Conflict(f"referral {code} changed; reload and try again", key="conflict")
    if not waiting_after_no_show(session, referral):
        raise IllegalTransition(
            f"referral {code} is not waiting after a no-show", key="not_no_show"
        )
    return referral


def _restart(m: Mover, due: dt.datetime, why: str) -> None:
    """The active step due at `due` with its ladder from the start; the partner told."""
    active = m.active
    if active is None:
        return
    m.referral.updated_at = m.now
    active.due_at = due
    active.alert_seq, active.next_alert_at = 0, m.now
    m.event("step.due_reset", active, step=active.key, due_at=due.isoformat(), why=why)
    m.tell_partner(active, why=why)
