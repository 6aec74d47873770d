"""Moving a referral on: a person's action becomes transitions, a next step and events, atomically."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col

from referrals.config.province import DueRule
from referrals.infra.context import Context
from referrals.models.errors import Conflict, DomainError, IllegalTransition, NotFound
from referrals.models.lifecycle import (
    CLOSED,
    DEFAULT_CANCEL_REASON,
    REASON_REQUIRED,
    Action,
    Outcome,
    Reason,
    ReferralStatus,
    StepStatus,
    referral_move,
    step_move,
)
from referrals.models.policy import Acting, actor_of, require_referral
from referrals.models.workflow import Event, Notification, PathwayVersion, Referral, Step
from referrals.notifiers import messages


def get_referral(session: Session, code: str, *, for_update: bool = False) -> Referral:
    query = select(Referral).where(col(Referral.code) == code)
    if for_update:
        query = query.with_for_update()
    referral = session.scalars(query).first()
    if referral is None:
        raise NotFound(f"unknown referral {code!r}")
    return referral


def referral_for(session: Session, by: Acting, code: str, *, act: bool = False) -> Referral:
    """Referral `code` as `by` may see it (or act on it, with `act`), else as if absent."""
    referral = get_referral(session, code)
    require_referral(
        by, code=code, area_key=referral.area_key, organization_id=referral.organization_id, act=act
    )
    return referral


def parse_reason(value: str | None) -> Reason | None:
    if value is None:
        return None
    try:
        return Reason(value.strip().lower().replace("-", "_"))
    except ValueError:
        raise DomainError(
            f"unknown reason {value!r} (one of: {', '.join(r.value for r in Reason)})"
        ) from None


class Mover:
    """Applies moves to one loaded referral and records an event for each (also used by the
    no-show and re-booking use cases, which move a referral outside `advance`)."""

    def __init__(
        self, session: Session, referral: Referral, actor: str, now: dt.datetime, ctx: Context
    ) -> None:
        self.session, self.referral, self.actor, self.now, self.ctx = (
            session,
            referral,
            actor,
            now,
            ctx,
        )
        self.steps = list(
            session.scalars(
                select(Step).where(col(Step.referral_id) == referral.id).order_by(col(Step.seq))
            )
        )

    def event(self, kind: str, on: Step | None = None, **data: Any) -> None:
        self.session.add(
            Event(
                referral_id=self.referral.id,
                step_id=on.id if on else None,
                kind=kind,
                at=self.now,
                actor=self.actor,
                data=data,
            )
        )

    def move(self, trigger: str, **data: Any) -> None:
        current = ReferralStatus(self.referral.status)
        held = ReferralStatus(self.referral.held_from) if self.referral.held_from else None
        new = referral_move(trigger, current, held)
        self.referral.status = new.value
        self.referral.held_from = current.value if new == ReferralStatus.on_hold else None
        if new in CLOSED:
            self.referral.closed_at = self.now
        self.event(
            f"referral.{new.value}", None, **{"from": current.value, "to": new.value}, **data
        )

    def step(self, step: Step, trigger: str, **data: Any) -> None:
        new = step_move(trigger, StepStatus(step.status))
        step.status = new.value
        if trigger == "activate":
            step.activated_at = self.now
            step.due_at = self.ctx.calendar.due(self.now, DueRule.model_validate(step.due_rule))
            step.alert_seq, step.next_alert_at = 0, self.now  # the next sweep schedules its ladder
            data["due_at"] = step.due_at.isoformat()
        elif trigger in ("done", "fail"):
            step.completed_at, step.completed_by = self.now, self.actor
        self.event(f"step.{new.value}", step, step=step.key, **data)

    def tell_partner(self, step: Step, *, why: str) -> None:
        """A partner's step is theirs again (resumed, re-booked, after the office's step): its
        first contacts get a prompt with their link instead of waiting for the reminder."""
        if step.actor != "partner" or step.due_at is None:
            return
        assert step.id is not None and self.referral.id is not None  # loaded rows have ids
        definition = self.session.scalars(
            select(col(PathwayVersion.definition)).where(
                col(PathwayVersion.key) == self.referral.pathway_key,
                col(PathwayVersion.version) == self.referral.pathway_version,
            )
        ).one()
        template = next(s for s in definition["steps"] if s["key"] == step.key)
        messages.step_yours(
            self.session,
            referral=self.referral,
            step_id=step.id,
            step=template,
            due=step.due_at,
            why=why,
            now=self.now,
        )

    @property
    def active(self) -> Step | None:
        return next((s for s in self.steps if s.status == StepStatus.active), None)

    def close_steps(self, *, failed: bool) -> None:
        for s in self.steps:
            if s.status == StepStatus.active and failed:
                self.step(s, "fail")
            elif s.status in (StepStatus.active, StepStatus.pending):
                self.step(s, "skip")
        # Messages not yet sent about a closed referral would only confuse the partner.
        self.session.execute(
            Notification.cancelling(
                col(Notification.referral_id) == self.referral.id,
                reason="referral closed before delivery",
            )
        )


def advance(
    session: Session,
    *,
    code: str,
    action: Action,
    by: Acting,
    ctx: Context,
    now: dt.datetime,
    step_key: str | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Referral:
    """Apply one action of `by`; raise a DomainError (and write nothing) if the policy or the
    lifecycle does not allow it now (not seen: NotFound; seen, not allowed: Forbidden)."""
    referral = get_referral(session, code, for_update=True)
    require_referral(
        by, code=code, area_key=referral.area_key, organization_id=referral.organization_id
    )
    if expected_version is not None and referral.version != expected_version:
        raise Conflict(
            f"referral {code} changed (version {referral.version}, you had {expected_version})",
            key="conflict",
        )
    why = parse_reason(reason)
    if action in REASON_REQUIRED and why is None:
        raise DomainError(
            f"{action} needs --reason (one of: {', '.join(r.value for r in Reason)})",
            key="reason_needed",
        )
    m = Mover(session, referral, actor_of(by), now, ctx)
    referral.updated_at = now  # every action bumps the version, even one that only moves steps
    if action in (Action.accept, Action.done):
        _complete_step(m, action, step_key)
    elif action in (Action.decline, Action.fail, Action.cancel):
        m.move(action.value, reason=(why or DEFAULT_CANCEL_REASON).value)
        referral.outcome = Outcome.not_successful.value
        referral.outcome_reason = (why or DEFAULT_CANCEL_REASON).value
        m.close_steps(failed=action != Action.cancel)
        if action == Action.cancel:
            messages.referral_closed(session, referral, now)
    elif action == Action.hold:
        m.move("hold", **({"reason": why.value} if why else {}))
        if (active := m.active) is not None:  # no reminders while on hold
            active.next_alert_at = None
    elif action == Action.resume:
        m.move("resume")
        if (active := m.active) is not None:  # the clock restarts for the step that was waiting
            active.due_at = ctx.calendar.due(now, DueRule.model_validate(active.due_rule))
            active.alert_seq, active.next_alert_at = 0, now
            m.event("step.due_reset", active, step=active.key, due_at=active.due_at.isoformat())
            m.tell_partner(active, why="resumed")
    flush_moves(session, code)
    return referral


def flush_moves(session: Session, code: str) -> None:
    """Write the moves now: another actor who changed the referral first (its version) makes
    this a Conflict, and the transaction writes nothing."""
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(
            f"referral {code} was changed by someone else; reload and try again", key="conflict"
        ) from None


def _complete_step(m: Mover, action: Action, step_key: str | None) -> None:
    status = ReferralStatus(m.referral.status)
    active = m.active
    if status == ReferralStatus.on_hold:
        raise IllegalTransition(
            f"referral {m.referral.code} is on hold; resume it first", key="on_hold"
        )
    if active is None or status in CLOSED:
        raise IllegalTransition(
            f"referral {m.referral.code} is {status}; no step is waiting", key="no_step"
        )
    if step_key is not None and step_key != active.key:
        raise IllegalTransition(
            f"step {step_key!r} is not the active step (active: {active.key})", key="not_active"
        )
    first = active.seq == 0
    if action == Action.accept and not first:
        raise IllegalTransition(f"cannot accept a referral that is {status}")
    m.step(active, "done")
    if first:
        m.move("accept")
    nxt = next((s for s in m.steps if s.seq > active.seq and s.status == StepStatus.pending), None)
    if nxt is None:
        m.referral.outcome = Outcome.successful.value
        m.move("complete")
        return
    if not first and ReferralStatus(m.referral.status) == ReferralStatus.accepted:
        m.move("start")
    m.step(nxt, "activate")
    if active.actor == "coordinator":  # the office's step done: the partner's turn again
        m.tell_partner(nxt, why="turn")
