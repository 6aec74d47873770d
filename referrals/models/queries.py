"""Read models for `list` and `show`: plain dicts with local-time ISO dates, built set-based."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, select
from sqlmodel import Session

from referrals.models.directory import Contact, Organization
from referrals.models.errors import NotFound
from referrals.models.lifecycle import WORKING, StepStatus
from referrals.models.people import Client, User
from referrals.models.workflow import Event, Notification, Referral, Step


def get_referral(session: Session, code: str, *, for_update: bool = False) -> Referral:
    query = select(Referral).where(Referral.code == code)
    if for_update:
        query = query.with_for_update()
    referral = session.scalars(query).first()
    if referral is None:
        raise NotFound(f"unknown referral {code!r}")
    return referral


def local_iso(value: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


def _overdue(now: dt.datetime) -> Any:
    """Referrals waiting on a step whose deadline has passed (computed, never stored)."""
    late_step = select(Step.id).where(
        Step.referral_id == Referral.id, Step.status == StepStatus.active.value, Step.due_at < now
    )
    return and_(Referral.status.in_(sorted(WORKING)), exists(late_step))


def list_referrals(
    session: Session,
    *,
    tz: ZoneInfo,
    now: dt.datetime,
    overdue: bool = False,
    status: str | None = None,
    partner: str | None = None,
    district: str | None = None,
    code: str | None = None,
) -> list[dict[str, Any]]:
    query = (
        select(
            Referral.id,
            Referral.code,
            Referral.status,
            Referral.priority,
            Referral.pathway_key,
            Referral.pathway_version,
            Referral.area_key,
            Referral.launched_at,
            Referral.closed_at,
            Referral.outcome,
            Referral.outcome_reason,
            Referral.version,
            Organization.slug,
            Client.code.label("client"),
            User.username,
        )
        .join(Organization, Organization.id == Referral.organization_id)
        .join(Client, Client.id == Referral.client_id)
        .join(User, User.id == Referral.coordinator_id)
        .order_by(Referral.launched_at, Referral.id)
    )
    if overdue:
        query = query.where(_overdue(now))
    if status:
        query = query.where(Referral.status == status)
    if partner:
        query = query.where(Organization.slug == partner)
    if district:
        query = query.where(Referral.area_key == district)
    if code:
        query = query.where(Referral.code == code)
    rows = session.execute(query).all()
    steps: dict[int, list[dict[str, Any]]] = {r.id: [] for r in rows}
    step_query = select(
        Step.referral_id,
        Step.key,
        Step.actor,
        Step.status,
        Step.due_at,
        Step.completed_at,
        Step.escalation_level,
    ).order_by(Step.referral_id, Step.seq)
    if len(rows) < 500:
        step_query = step_query.where(Step.referral_id.in_(list(steps)))
    active: dict[int, tuple[str, dt.datetime | None]] = {}
    for s in session.execute(step_query):
        if s.referral_id in steps:
            due = local_iso(s.due_at, tz)
            steps[s.referral_id].append(
                {
                    "key": s.key,
                    "actor": s.actor,
                    "status": s.status,
                    "due_at": due,
                    "completed_at": local_iso(s.completed_at, tz),
                    "escalation_level": s.escalation_level,
                }
            )
            if s.status == StepStatus.active:
                active[s.referral_id] = (s.key, s.due_at)
    result = []
    for r in rows:
        key, due_at = active.get(r.id, (None, None))
        result.append(
            {
                "code": r.code,
                "status": r.status,
                "priority": r.priority,
                "partner": r.slug,
                "pathway": r.pathway_key,
                "pathway_version": r.pathway_version,
                "district": r.area_key,
                "client": r.client,
                "coordinator": r.username,
                "launched_at": local_iso(r.launched_at, tz),
                "closed_at": local_iso(r.closed_at, tz),
                "outcome": r.outcome,
                "outcome_reason": r.outcome_reason,
                "version": r.version,
                "active_step": key,
                "next_due_at": local_iso(due_at, tz),
                "overdue": bool(due_at and due_at < now and r.status in WORKING),
                "steps": steps[r.id],
            }
        )
    if overdue:
        result.sort(key=lambda x: x["next_due_at"] or "")
    return result


def show_referral(session: Session, *, code: str, tz: ZoneInfo, now: dt.datetime) -> dict[str, Any]:
    referral = get_referral(session, code)
    (summary,) = list_referrals(session, tz=tz, now=now, code=code)
    events = session.execute(
        select(Event.kind, Event.at, Event.actor, Event.data)
        .where(Event.referral_id == referral.id)
        .order_by(Event.at, Event.id)
    )
    summary["events"] = [
        {"kind": e.kind, "at": local_iso(e.at, tz), "actor": e.actor, "data": e.data}
        for e in events
    ]
    messages = session.execute(
        select(
            Notification.channel,
            Notification.status,
            Notification.template,
            Notification.attempts,
            Notification.sent_at,
            Notification.last_error,
            Contact.name,
            Contact.role,
        )
        .outerjoin(Contact, Contact.id == Notification.contact_id)
        .where(Notification.referral_id == referral.id)
        .order_by(Notification.id)
    )
    summary["messages"] = [
        {
            "channel": m.channel,
            "status": m.status,
            "template": m.template,
            "to": m.name,
            "role": m.role,
            "attempts": m.attempts,
            "sent_at": local_iso(m.sent_at, tz),
            "last_error": m.last_error,
        }
        for m in messages
    ]
    return summary
