"""Partners answer from the link in their message: no account, one tap per step.

A link names the outbox message that carried it (models/links.py), and through it one referral
and one contact. It serves that contact for every step of that referral that is the partner's,
one after the other, so that the partner's whole loop runs from the first message instead of
waiting for a reminder per step. Opening it is checked here: forged or tampered (bad MAC),
revoked (the message was cancelled, its link withdrawn, or its contact no longer the partner's),
expired (`LINK_DAYS` after the message), or the referral closed. An answer names the step it
answers and the referral's version it was made from, so a stale or replayed form is refused
("answered") instead of answering the next step by accident; a form without them answers the
step its message asked about, as links did before. An answer moves the referral through
`advance()` like any other actor, in one transaction with its events, the link's last use, the
now-pointless reminders cancelled and the coordinator told (with the alternatives when the
partner declines). A coordinator's step is never answerable from a link.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session, col

from referrals.infra.client_keys import cipher_of, sealing_cipher
from referrals.infra.context import Context
from referrals.models.directory import Contact, Organization, Service, ServiceArea
from referrals.models.errors import DomainError, NotFound
from referrals.models.lifecycle import (
    CLOSED,
    Action,
    MessageStatus,
    Reason,
    ReferralStatus,
    StepStatus,
)
from referrals.models.links import message_of
from referrals.models.people import Client, Consent
from referrals.models.policy import Acting, PartnerContact, actor_of, require_role
from referrals.models.roles import Role
from referrals.models.workflow import Event, Notification, PathwayVersion, Referral, Step
from referrals.notifiers import messages
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.no_show import record_no_show
from referrals.usecases.referrals.steps import cancel_reminders, coordinator_step_name

LINK_DAYS = 60
APPOINTMENT_AHEAD = dt.timedelta(days=90)
DECLINE_REASONS = (
    Reason.partner_lacks_capacity,
    Reason.not_our_service,
    Reason.client_not_eligible,
    Reason.other,
)
# A partner's answer -> (the lifecycle action, its reason, whether it names the step); a
# no-show is not a lifecycle action of `advance` but its own use case (no_show.py).
ANSWERS: dict[str, tuple[Action, str | None, bool]] = {
    "accept": (Action.accept, None, True),
    "done": (Action.done, None, True),
    "decline": (Action.decline, None, False),  # the reason comes from the partner's form
}
NO_SHOW = "no_show"
# Answers that cannot be taken back ask the partner to confirm first (the page's second form).
CONFIRMED = frozenset({"decline", NO_SHOW})
# "used" is no longer raised (a link serves every partner step); kept for its page's words
Refusal = Literal["invalid", "revoked", "expired", "used", "closed", "answered"]


class LinkRefused(DomainError):
    def __init__(self, why: Refusal, view: LinkView | None = None) -> None:
        self.why, self.view = why, view
        super().__init__(f"link refused: {why}")


class Answer(BaseModel):
    """What a partner's form may send; anything else is refused before anything is written."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "decline", "done", "no_show"]
    step: str | None = Field(default=None, max_length=60)  # the step the page showed
    version: int | None = Field(default=None, ge=1)  # the referral's version the page showed
    reason: Reason | None = None
    note: str | None = Field(default=None, max_length=500)
    on: dt.date | None = None  # the outcome's date, e.g. the ID card was issued on
    confirm: bool = False  # a decline or a no-show is recorded only once confirmed


@dataclass
class StepLine:
    """One step of the referral as the partner's page lists it: done, current or to come."""

    key: str
    name: str
    status: str
    actor: str
    due_at: dt.datetime | None
    done_at: dt.datetime | None


@dataclass
class LinkView:
    """What the partner's page shows: codes and partner-facing names, never the client."""

    message_id: int
    language: str
    code: str
    service: str
    step: str
    step_name: str
    due_at: dt.datetime | None
    actions: list[str] = field(default_factory=list)
    asks: str | None = None  # the date the step asks for when done, in the contact's language
    capacity: str = "open"  # what the partner last said of this service (set_capacity)
    client: dict[str, str] = field(default_factory=dict)  # what the pathway shares, with consent
    steps: list[StepLine] = field(default_factory=list)  # the referral's steps, in order
    version: int = 0  # the referral's version, sent back with an answer against stale forms
    next_by: str | None = None  # "coordinator" while the open referral waits on the office
    paused: bool = False  # on hold (e.g. after a no-show): nothing to answer until it resumes


@dataclass
class Opened:
    message: Notification
    referral: Referral
    step: Step | None
    view: LinkView


def _definition(session: Session, referral: Referral) -> dict[str, Any]:
    return session.scalars(
        select(col(PathwayVersion.definition)).where(
            col(PathwayVersion.key) == referral.pathway_key,
            col(PathwayVersion.version) == referral.pathway_version,
        )
    ).one()


def open_link(
    session: Session,
    ctx: Context,
    token: str,
    now: dt.datetime,
    lock: bool,
    answer: Answer | None = None,
) -> Opened:
    """The link's message, referral and the step that is the partner's now, or LinkRefused.

    With an answer, the step it names (else the step its message asked about) must be that
    step, and the version it names the referral's: a stale or replayed form is "answered"."""
    message_id = message_of(ctx.vault, token)
    message = session.get(Notification, message_id, with_for_update=lock) if message_id else None
    if message is None or message.contact_id is None or message.referral_id is None:
        raise LinkRefused("invalid")
    assert message.id is not None  # a loaded row has its id
    referral = session.get(Referral, message.referral_id, with_for_update=lock)
    assert referral is not None
    contact = session.get(Contact, message.contact_id)
    language = messages.language_of(contact, default=message.language)
    vi = language == "vi"
    templates = {s["key"]: s for s in _definition(session, referral)["steps"]}
    steps = list(
        session.scalars(
            select(Step).where(col(Step.referral_id) == referral.id).order_by(col(Step.seq))
        )
    )
    current = next((s for s in steps if s.status == StepStatus.active.value), None)
    mine = current if current is not None and current.actor == "partner" else None
    template = templates.get(mine.key) if mine else None
    service = session.get(Service, referral.service_id)
    assert service is not None
    view = LinkView(
        message_id=message.id,
        language=language,
        code=referral.code,
        service=service.name if vi else service.name_en,
        step=mine.key if mine else "",
        step_name=(template["name"] if vi else template["name_en"]) if template else "",
        due_at=mine.due_at if mine else None,
        asks=(template.get("asks") if vi else template.get("asks_en")) if template else None,
        capacity=service.capacity,
        steps=[_line(s, templates.get(s.key), vi) for s in steps],
        version=referral.version,
    )
    # A message cancelled before its link was ever used is withdrawn; one cancelled after (the
    # reminder whose step the partner just answered through it) evidently reached the partner,
    # and its link goes on serving the next steps.
    withdrawn = message.status == MessageStatus.cancelled.value and message.link_used_at is None
    if (
        withdrawn
        or message.link_revoked_at is not None
        or contact is None
        or not contact.active
        or contact.organization_id != referral.organization_id
    ):
        raise LinkRefused("revoked", view)
    if message.created_at + dt.timedelta(days=LINK_DAYS) < now:
        raise LinkRefused("expired", view)
    if ReferralStatus(referral.status) in CLOSED:
        raise LinkRefused("closed", view)
    if current is not None and mine is None:
        view.next_by = "coordinator"
    if answer is not None:
        asked = answer.step or message.context.get("step")
        stale = answer.version is not None and answer.version != referral.version
        if mine is None or asked != mine.key or stale:
            raise LinkRefused("answered", view)
    view.paused = referral.status == ReferralStatus.on_hold.value
    if mine is not None and not view.paused:
        first = mine.seq == 0
        # "Did not come" stays offered after a slip was scanned: the partner knows, the slip's
        # page may be pressed by whoever holds it.
        view.actions = ["accept", "decline"] if first else ["done", NO_SHOW]
    return Opened(message, referral, mine, view)


def _line(step: Step, template: dict[str, Any] | None, vi: bool) -> StepLine:
    name = (template["name"] if vi else template["name_en"]) if template else step.key
    return StepLine(
        key=step.key,
        name=name,
        status=step.status,
        actor=step.actor,
        due_at=step.due_at,
        done_at=step.completed_at,
    )


def view_link(
    session: Session, *, ctx: Context, token: str, now: dt.datetime, share: bool = True
) -> LinkView:
    """What the link's page shows, or LinkRefused saying why it cannot be used.

    The client's details the pathway shares with partners are shown only while the client's
    consent to this partner for this pathway stands, and every showing is on the timeline.
    """
    opened = open_link(session, ctx, token, now, lock=False)
    referral = opened.referral
    shares = (
        (
            session.scalars(
                select(col(PathwayVersion.definition)).where(
                    col(PathwayVersion.key) == referral.pathway_key,
                    col(PathwayVersion.version) == referral.pathway_version,
                )
            )
            .one()
            .get("shares")
            or []
        )
        if share
        else []
    )
    consented = (
        shares
        and session.scalars(
            select(col(Consent.id)).where(
                col(Consent.client_id) == referral.client_id,
                col(Consent.organization_id) == referral.organization_id,
                col(Consent.purpose) == referral.pathway_key,
                col(Consent.withdrawn_at).is_(None),
            )
        ).first()
    )
    if consented:
        client = session.get(Client, referral.client_id)
        assert client is not None
        cipher = cipher_of(session, ctx.vault, client)
        for name in shares:
            value = cipher.decrypt(getattr(client, f"{name}_enc"), f"client.{name}")
            if value:
                opened.view.client[name] = value
        session.add(
            Event(
                referral_id=referral.id,
                client_id=referral.client_id,
                kind="pii.viewed",
                at=now,
                actor=f"contact:{opened.message.contact_id}",
                data={
                    "fields": sorted(opened.view.client),
                    "via": "link",
                    "message": opened.message.id,
                },
            )
        )
    return opened.view


def answer_link(
    session: Session, *, ctx: Context, token: str, answer: Answer, now: dt.datetime
) -> LinkView:
    """Record a partner's answer; raises LinkRefused or DomainError and writes nothing then."""
    opened = open_link(session, ctx, token, now, lock=True, answer=answer)
    message, referral, step = opened.message, opened.referral, opened.step
    assert step is not None
    assert referral.id is not None  # a loaded row has its id
    if answer.action not in opened.view.actions:
        raise DomainError(f"{answer.action} is not possible at this step")
    if answer.action in CONFIRMED and not answer.confirm:
        raise DomainError(f"{answer.action} needs confirming", key="unconfirmed")
    if answer.action == "done" and opened.view.asks and answer.on is None:
        raise DomainError(f"this step needs a date: {opened.view.asks}")
    booked = (_definition(session, referral).get("no_show") or {}).get("appointment")
    if answer.action == "done" and answer.on and step.key == booked:
        # the sweep counts a no-show from it: a past or far-off date would fire it wrongly
        today = now.astimezone(ctx.tz).date()
        if not today <= answer.on <= today + APPOINTMENT_AHEAD:
            raise DomainError(
                "an appointment is a day from today to 90 days ahead", key="appointment_day"
            )
    contact = session.get(Contact, message.contact_id)
    assert contact is not None  # contacts are deactivated, never deleted
    assert contact.id is not None  # a loaded row has its id
    by = PartnerContact(contact_id=contact.id, organization_id=contact.organization_id)
    if answer.action == "decline" and answer.reason not in (None, *DECLINE_REASONS):
        raise DomainError(f"{answer.reason} is not a reason to decline")
    if answer.action == NO_SHOW:  # the coordinator is told by the no-show's own message
        record_no_show(
            session, code=referral.code, by=by, ctx=ctx, now=now, via="link", step_key=step.key
        )
    else:
        action, reason, step_key = ANSWERS[answer.action]
        if answer.action == "decline":
            reason = (answer.reason or Reason.other).value
        advance(
            session,
            code=referral.code,
            action=action,
            by=by,
            ctx=ctx,
            now=now,
            reason=reason,
            step_key=step.key if step_key else None,
        )
    data: dict[str, Any] = {"message": message.id, "action": answer.action, "step": step.key}
    if answer.on:
        data["on"] = answer.on.isoformat()
    if answer.note:  # free text may name the client: sealed under their key, shredded with it
        client = session.get(Client, referral.client_id)
        assert client is not None
        data["note_enc"] = sealing_cipher(session, ctx.vault, client).encrypt(
            answer.note, "event.note"
        )
    session.add(
        Event(
            referral_id=referral.id,
            step_id=step.id,
            kind="link.answered",
            at=now,
            actor=actor_of(by),
            data=data,
        )
    )
    message.link_used_at = now  # the last answer through it; no longer the link's end
    cancel_reminders(session, referral.id, step.key)
    if answer.action != NO_SHOW:
        _tell_coordinator(session, referral, step, answer, opened.view, now)
    session.flush()
    return opened.view


class CapacityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacity: Literal["open", "waitlist", "full"]


def set_capacity(
    session: Session, *, ctx: Context, token: str, capacity: CapacityIn, now: dt.datetime
) -> str:
    """A partner says, from any link of theirs still valid, whether the referral's service takes
    clients now; coordinators see it when they choose a partner. Returns the contact's language.
    Unlike an answer, this stays possible after the step was answered or the referral closed."""
    message_id = message_of(ctx.vault, token)
    message = session.get(Notification, message_id) if message_id else None
    if message is None or message.contact_id is None or message.referral_id is None:
        raise LinkRefused("invalid")
    withdrawn = message.status == MessageStatus.cancelled.value and message.link_used_at is None
    if withdrawn or message.link_revoked_at is not None:  # as _open: used, it still serves
        raise LinkRefused("revoked")
    if message.created_at + dt.timedelta(days=LINK_DAYS) < now:
        raise LinkRefused("expired")
    referral = session.get(Referral, message.referral_id)
    assert referral is not None
    service = session.get(Service, referral.service_id, with_for_update=True)
    assert service is not None
    if service.capacity != capacity.capacity:
        session.add(
            Event(
                referral_id=referral.id,
                kind="service.capacity",
                at=now,
                actor=f"contact:{message.contact_id}",
                data={
                    "pathway": service.pathway_key,
                    "capacity": capacity.capacity,
                    "was": service.capacity,
                },
            )
        )
        service.capacity, service.capacity_at = capacity.capacity, now
    contact = session.get(Contact, message.contact_id)
    return messages.language_of(contact, default=message.language)


def _tell_coordinator(
    session: Session,
    referral: Referral,
    step: Step,
    answer: Answer,
    view: LinkView,
    now: dt.datetime,
) -> None:
    partner = session.get(Organization, referral.organization_id)
    alternatives: list[str] = []
    if answer.action == "decline":  # who else offers this service in the client's area
        alternatives = list(
            session.scalars(
                select(col(Organization.name))
                .join(Service, col(Service.organization_id) == col(Organization.id))
                .join(ServiceArea, col(ServiceArea.service_id) == col(Service.id))
                .where(
                    col(Service.pathway_key) == referral.pathway_key,
                    col(Service.active),
                    col(Organization.active),
                    col(ServiceArea.area_key) == referral.area_key,
                    col(Organization.id) != referral.organization_id,
                )
                .order_by(col(Organization.name))
            )
        )
    context = {
        "code": referral.code,
        "partner": partner.name if partner else "",
        "step": step.key,
        "step_name": coordinator_step_name(session, referral, step.key),
        "answer": answer.action,
        "reason": answer.reason.value if answer.reason else None,
        "on": answer.on.isoformat() if answer.on else None,
        "status": referral.status,
        "alternatives": alternatives,
    }
    asked = step.seq == 0 or _asked_step(session, view.message_id) == step.key
    messages.answered(
        session,
        referral=referral,
        context=context,
        message_id=view.message_id,
        now=now,
        step=None if asked else step.key,
    )


def _asked_step(session: Session, message_id: int) -> str | None:
    message = session.get(Notification, message_id)
    return message.context.get("step") if message else None


def revoke_link(session: Session, *, message_id: int, by: Acting, now: dt.datetime) -> Notification:
    """Withdraw the link a message carried (sent to the wrong person, a phone lost); an admin's
    act."""
    require_role(by, Role.admin, doing="outbox revoke")
    message = session.get(Notification, message_id, with_for_update=True)
    if message is None or message.contact_id is None:
        raise NotFound(f"no message {message_id} with a partner's link")
    if message.link_revoked_at is None:
        message.link_revoked_at = now
        session.add(
            Event(
                referral_id=message.referral_id,
                kind="link.revoked",
                at=now,
                actor=actor_of(by),
                data={"message": message.id},
            )
        )
    return message
