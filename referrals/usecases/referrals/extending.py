"""More time on a step (gia hạn): the partner asks from its link, the pathway or the coordinator
decides, and the deadline with its ladder starts again from the new date.

A partner's contact asks, from the page of any link of theirs that serves the step now, for a
new date with a reason. The new deadline is the end of that office day (province.yaml
`working_day_ends`). Up to the step's `extend_limit` (pathways.yaml, counted from the current
deadline like a due rule, and compared as dates: a partner picks a day, not an hour) the
request is granted as it is asked; beyond it, or on a step with no limit, it waits for the
coordinator, who is told by e-mail and grants or refuses it from the referral's page (or
`referrals extension decide`); the contact who asked is told either way, with a fresh link.

Granting moves the step's deadline and restarts its ladder from the first rung (the next sweep
schedules it against the new deadline, and the reminders queued for the old one are
cancelled), like `resume` does. Everything is on the timeline: `extension.requested`,
`extension.granted` or `extension.refused`, and `step.due_reset`. The reason is free text that
may name the client, so it is sealed under the client's key (shredded with it) and never put
in an event or a message; a coordinator who may decide reads it on the referral's page, and
that reading is a `pii.viewed` event like every other.

Refused with nothing written: a request on the acknowledgement (a referral is accepted or
declined, not put off), a date not after the current deadline's day, one already past or
more than `MAX_AHEAD` away, a stale page (another step, another version), a step that is not the
partner's now, a referral on hold or closed, and a request while one already waits for the step
(the partial unique index settles two at once: the loser is a Conflict). A request whose step
was done, or whose referral closed or paused, while it waited can no longer be granted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from referrals.config.province import DueRule
from referrals.infra.client_keys import cipher_of, sealing_cipher
from referrals.infra.context import Context
from referrals.infra.crypto import ClientCipher
from referrals.infra.db import lost_race
from referrals.models.directory import Contact, Organization
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.lifecycle import CLOSED, WORKING, ReferralStatus, StepStatus
from referrals.models.people import Client, User
from referrals.models.policy import Acting, actor_of, acts_in_area, require_role
from referrals.models.roles import Role
from referrals.models.workflow import (
    Event,
    Extension,
    ExtensionStatus,
    PathwayVersion,
    Referral,
    Step,
)
from referrals.notifiers import messages
from referrals.queries.lateness import step_of
from referrals.usecases.clients.merging import tombstones_of
from referrals.usecases.referrals import answering
from referrals.usecases.referrals.advancing import flush_moves, referral_for
from referrals.usecases.referrals.answering import LinkRefused
from referrals.usecases.referrals.steps import cancel_reminders, coordinator_step_name

MAX_AHEAD = dt.timedelta(days=90)  # a later date is a typing mistake, or a new referral
REASON_COLUMN = "extension.reason"  # what the sealed reason is bound to (its AEAD context)
BY_RULE = "system"  # who grants a request within the step's limit: the pathway's rule


class ExtensionAsk(BaseModel):
    """What the partner's form sends; anything else is refused before anything is written."""

    model_config = ConfigDict(extra="forbid")

    step: str = Field(min_length=1, max_length=60)  # the step the page showed
    version: int = Field(ge=1)  # the referral's version the page showed
    new_date: dt.date  # a local day (the page types it dd/mm/yyyy)
    reason: str = Field(min_length=1, max_length=300)

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        reason = reason.strip()
        if not reason:
            raise ValueError("say why more time is needed")
        return reason


@dataclass(frozen=True)
class Asked:
    """What became of a request at once: granted (within the limit) or waiting."""

    extension_id: int
    status: str
    new_due_at: dt.datetime
    language: str  # the contact's, for the page that says so


@dataclass(frozen=True)
class Waiting:
    """A request waiting for the coordinator, as the referral's page shows it."""

    id: int
    step: str
    was_due_at: dt.datetime
    new_due_at: dt.datetime
    asked_at: dt.datetime
    asked_by: str  # the contact's name and partner (directory data, not the client's)
    reason: str | None  # in clear only for whoever may decide (and None once erased)
    grantable: bool  # its step still waits and the referral is working


@dataclass(frozen=True)
class Latest:
    """The last request on a step, as the partner's page says it."""

    status: str
    was_due_at: dt.datetime
    new_due_at: dt.datetime


def ask_extension(
    session: Session, *, ctx: Context, token: str, ask: ExtensionAsk, now: dt.datetime
) -> Asked:
    """Record a partner's request for more time through its link; granted at once within the
    step's limit, else waiting for the coordinator (told by e-mail). Raises LinkRefused,
    DomainError or Conflict, and writes nothing then."""
    opened = answering.open_link(session, ctx, token, now, lock=True)
    referral, step, message = opened.referral, opened.step, opened.message
    if step is None or step.key != ask.step or referral.version != ask.version:
        raise LinkRefused("answered", opened.view)  # a stale page, or no step of theirs now
    if referral.status == ReferralStatus.on_hold.value:
        raise DomainError(f"referral {referral.code} is on hold", key="on_hold")
    if step.seq == 0:  # a referral is accepted or declined, not put off
        raise DomainError("accept or decline the referral first", key="extension_acknowledge")
    assert step.due_at is not None and referral.id is not None and step.id is not None
    new_due = _new_deadline(ctx, step, ask.new_date, now)
    if _waiting(session, step.id) is not None:
        raise Conflict(
            "a request for more time already waits for this step", key="extension_waiting"
        )
    client = session.get(Client, referral.client_id)
    assert client is not None  # clients are erased, never deleted
    sealed = sealing_cipher(session, ctx.vault, client).encrypt(ask.reason, REASON_COLUMN)
    by = f"contact:{message.contact_id}"
    extension = Extension(
        referral_id=referral.id,
        step_id=step.id,
        contact_id=message.contact_id,
        asked_at=now,
        was_due_at=step.due_at,
        new_due_at=new_due,
        reason_enc=sealed,
    )
    session.add(extension)
    referral.updated_at = now  # a new version: a page from before the request is stale
    _flush(session, referral.code)
    assert extension.id is not None  # flushed
    definition = _definition(session, referral)
    within = _within_limit(ctx, definition, step, new_due)
    _event(session, extension, step, "extension.requested", by, now, within_limit=within)
    if within:
        _grant(session, referral, step, extension, BY_RULE, now)
    else:
        _tell_coordinator(session, referral, step, extension, now)
    message.link_used_at = now  # the link's last use, as an answer through it
    _flush(session, referral.code)
    return Asked(extension.id, extension.status, new_due, opened.view.language)


def decide_extension(
    session: Session,
    *,
    ctx: Context,
    code: str,
    extension_id: int,
    grant: bool,
    by: Acting,
    now: dt.datetime,
) -> Extension:
    """The coordinator grants or refuses a request that waits (staff who may act on the
    referral; never a partner). Granting moves the deadline and restarts the ladder; either
    way the contact who asked is told. Raises DomainError and writes nothing then."""
    referral = referral_for(session, by, code, act=True)
    require_role(by, Role.coordinator, Role.admin, doing="deciding on more time")
    extension = session.get(Extension, extension_id, with_for_update=True)
    if extension is None or extension.referral_id != referral.id:
        raise NotFound(f"no request for more time {extension_id} on referral {code}")
    if extension.status != ExtensionStatus.requested.value:
        raise Conflict(
            f"the request for more time {extension_id} was already {extension.status}",
            key="extension_decided",
        )
    step = session.get(Step, extension.step_id)
    assert step is not None and step.due_at is not None  # a request is made on an active step
    if grant:
        _refuse_if_stale(referral, step, extension, now)
    actor = actor_of(by)
    referral.updated_at = now
    if grant:
        _grant(session, referral, step, extension, actor, now)
    else:
        extension.status = ExtensionStatus.refused.value
        extension.decided_at, extension.decided_by = now, actor
        _event(session, extension, step, "extension.refused", actor, now)
    _flush(session, code)
    _tell_contact(session, referral, step, extension, now)
    return extension


def waiting_extensions(
    session: Session, *, ctx: Context, code: str, by: User, now: dt.datetime
) -> list[Waiting]:
    """The requests waiting on referral `code`, for its page; the reasons in clear for whoever
    may decide (a `pii.viewed` event says they were shown), for anyone else not at all."""
    referral = referral_for(session, by, code)
    rows = list(
        session.scalars(
            select(Extension)
            .where(
                col(Extension.referral_id) == referral.id,
                col(Extension.status) == ExtensionStatus.requested.value,
            )
            .order_by(col(Extension.id))
        )
    )
    if not rows:
        return []
    deciding = by.role in (Role.coordinator.value, Role.admin.value) and acts_in_area(
        by, referral.area_key
    )
    reasons = _opened_reasons(session, ctx, referral, rows) if deciding else {}
    if reasons:
        session.add(
            Event(
                referral_id=referral.id,
                client_id=referral.client_id,
                kind="pii.viewed",
                at=now,
                actor=actor_of(by),
                data={"fields": [REASON_COLUMN], "via": "web", "extensions": sorted(reasons)},
            )
        )
    steps = {
        s.id: s for s in session.scalars(select(Step).where(col(Step.referral_id) == referral.id))
    }
    askers = _askers(session, {r.contact_id for r in rows if r.contact_id is not None})
    working = ReferralStatus(referral.status) in WORKING
    return [
        Waiting(
            id=r.id or 0,
            step=steps[r.step_id].key,
            was_due_at=r.was_due_at,
            new_due_at=r.new_due_at,
            asked_at=r.asked_at,
            asked_by=askers.get(r.contact_id or 0, ""),
            reason=reasons.get(r.id or 0),
            grantable=working
            and steps[r.step_id].status == StepStatus.active.value
            and r.new_due_at > now,
        )
        for r in rows
    ]


def latest_extension(session: Session, *, code: str, step_key: str) -> Latest | None:
    """The last request for more time on the referral's step `step_key` (the partner's page
    says whether it waits, was granted or refused); None when there was none."""
    row = session.execute(
        select(col(Extension.status), col(Extension.was_due_at), col(Extension.new_due_at))
        .join(Step, col(Step.id) == col(Extension.step_id))
        .join(Referral, col(Referral.id) == col(Extension.referral_id))
        .where(col(Referral.code) == code, col(Step.key) == step_key)
        .order_by(col(Extension.id).desc())
        .limit(1)
    ).first()
    return Latest(row[0], row[1], row[2]) if row else None


# --- the steps of it -------------------------------------------------------------------------


def _new_deadline(ctx: Context, step: Step, day: dt.date, now: dt.datetime) -> dt.datetime:
    """The end of the office day `day`, if it may be the step's new deadline."""
    assert step.due_at is not None
    tz = ctx.calendar.tz
    current = step.due_at.astimezone(tz).date()
    if day <= current:
        raise DomainError(
            f"the new date must be after the current deadline ({current:%d/%m/%Y})",
            key="extension_not_later",
            due=f"{current:%d/%m/%Y}",
        )
    new_due = ctx.calendar.closing(day)
    if new_due <= now:
        raise DomainError("the new date has already passed", key="extension_past")
    if day - now.astimezone(tz).date() > MAX_AHEAD:
        raise DomainError(
            f"the new date is more than {MAX_AHEAD.days} days away",
            key="extension_too_far",
            days=MAX_AHEAD.days,
        )
    return new_due


def _within_limit(
    ctx: Context, definition: dict[str, Any], step: Step, new_due: dt.datetime
) -> bool:
    """Whether the new deadline's day is no later than the day the step's limit reaches from
    the current deadline (no limit: never)."""
    rule = step_of(definition, step.key).get("extend_limit")
    if not rule or step.due_at is None:
        return False
    reach = ctx.calendar.shift(step.due_at, DueRule.model_validate(rule))
    tz = ctx.calendar.tz
    return new_due.astimezone(tz).date() <= reach.astimezone(tz).date()


def _waiting(session: Session, step_id: int) -> int | None:
    return session.scalars(
        select(col(Extension.id)).where(
            col(Extension.step_id) == step_id,
            col(Extension.status) == ExtensionStatus.requested.value,
        )
    ).first()


def _grant(
    session: Session,
    referral: Referral,
    step: Step,
    extension: Extension,
    actor: str,
    now: dt.datetime,
) -> None:
    """The step due at the new deadline, its ladder from the first rung (the next sweep
    schedules it), the reminders queued for the old deadline cancelled."""
    assert referral.id is not None
    extension.status = ExtensionStatus.granted.value
    extension.decided_at, extension.decided_by = now, actor
    step.due_at = extension.new_due_at
    step.alert_seq, step.next_alert_at, step.escalation_level = 0, now, 0
    cancel_reminders(session, referral.id, step.key)
    _event(session, extension, step, "extension.granted", actor, now)
    session.add(
        Event(
            referral_id=referral.id,
            step_id=step.id,
            kind="step.due_reset",
            at=now,
            actor=actor,
            data={
                "step": step.key,
                "due_at": extension.new_due_at.isoformat(),
                "why": "extended",
                "extension": extension.id,
            },
        )
    )


def _refuse_if_stale(
    referral: Referral, step: Step, extension: Extension, now: dt.datetime
) -> None:
    """A request can be granted only while its step waits on a working referral, for a date
    still ahead and later than the step's deadline now."""
    if ReferralStatus(referral.status) in CLOSED or step.status != StepStatus.active.value:
        raise DomainError(
            "the step is no longer waiting: this request can no longer be granted",
            key="extension_stale",
        )
    if referral.status == ReferralStatus.on_hold.value:
        raise DomainError(f"referral {referral.code} is on hold; resume it first", key="on_hold")
    assert step.due_at is not None
    if extension.new_due_at <= now or extension.new_due_at <= step.due_at:
        raise DomainError(
            "the date asked for has passed, or the deadline moved since: refuse it, and the "
            "partner may ask again",
            key="extension_stale",
        )


def _event(
    session: Session,
    extension: Extension,
    step: Step,
    kind: str,
    actor: str,
    now: dt.datetime,
    **data: Any,
) -> None:
    """An extension's event: the step, the request and both dates; never its reason."""
    session.add(
        Event(
            referral_id=extension.referral_id,
            step_id=step.id,
            kind=kind,
            at=now,
            actor=actor,
            data={
                "step": step.key,
                "extension": extension.id,
                "was_due_at": extension.was_due_at.isoformat(),
                "new_due_at": extension.new_due_at.isoformat(),
                **data,
            },
        )
    )


def _tell_coordinator(
    session: Session, referral: Referral, step: Step, extension: Extension, now: dt.datetime
) -> None:
    assert extension.id is not None
    partner = session.get(Organization, referral.organization_id)
    messages.extension_asked(
        session,
        referral=referral,
        extension_id=extension.id,
        context={
            "code": referral.code,
            "partner": partner.name if partner else "",
            "step": step.key,
            "step_name": coordinator_step_name(session, referral, step.key),
            "was_due_at": extension.was_due_at.isoformat(),
            "new_due_at": extension.new_due_at.isoformat(),
        },
        now=now,
    )


def _tell_contact(
    session: Session, referral: Referral, step: Step, extension: Extension, now: dt.datetime
) -> None:
    """The contact who asked hears the decision while the step is still theirs to do (after it
    was done, or the referral closed, a refusal tidies the record and tells no one)."""
    contact = session.get(Contact, extension.contact_id) if extension.contact_id else None
    if (
        contact is None
        or contact.organization_id != referral.organization_id
        or step.status != StepStatus.active.value
        or ReferralStatus(referral.status) in CLOSED
    ):
        return
    assert extension.id is not None and step.due_at is not None
    messages.extension_decided(
        session,
        referral=referral,
        extension_id=extension.id,
        contact=contact,
        step=dict(step_of(_definition(session, referral), step.key)) or _unnamed(step.key),
        granted=extension.status == ExtensionStatus.granted.value,
        due=step.due_at,
        asked=extension.new_due_at,
        now=now,
    )


def _unnamed(key: str) -> dict[str, Any]:
    return {"key": key, "name": key, "name_en": key}


def _opened_reasons(
    session: Session, ctx: Context, referral: Referral, rows: list[Extension]
) -> dict[int, str]:
    """The requests' reasons in clear, by request id. A reason is sealed under the key of the
    client the referral was for when it was asked: after a merge, a tombstone's; each of the
    person's keys is tried (another key's tag does not match)."""
    client = session.get(Client, referral.client_id)
    assert client is not None
    ciphers: list[ClientCipher] = [cipher_of(session, ctx.vault, client)]
    ciphers += [cipher_of(session, ctx.vault, t) for t in tombstones_of(session, client)]
    opened: dict[int, str] = {}
    for row in rows:
        for cipher in ciphers:
            try:
                text = cipher.decrypt(row.reason_enc, REASON_COLUMN)
            except ValueError:  # another record's key
                continue
            if text is not None and row.id is not None:
                opened[row.id] = text
            break
    return opened


def _askers(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(col(Contact.id), col(Contact.name), col(Organization.name))
        .join(Organization, col(Organization.id) == col(Contact.organization_id))
        .where(col(Contact.id).in_(sorted(ids)))
    ).all()
    return {i: f"{name} ({partner})" for i, name, partner in rows}


def _definition(session: Session, referral: Referral) -> dict[str, Any]:
    return session.scalars(
        select(col(PathwayVersion.definition)).where(
            col(PathwayVersion.key) == referral.pathway_key,
            col(PathwayVersion.version) == referral.pathway_version,
        )
    ).one()


def _flush(session: Session, code: str) -> None:
    """Write now: a lost race (the referral's version, the one-waiting-request index) is a
    Conflict, and nothing is written."""
    try:
        flush_moves(session, code)
    except IntegrityError as exc:
        if not lost_race(exc):
            raise
        raise Conflict(
            "a request for more time already waits for this step", key="extension_waiting"
        ) from None
