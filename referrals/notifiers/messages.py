"""Who is told of what: every kind of message the engine queues, written in this one module.

A use case decides that something happened (a launch, an answer, a closed referral, an alert
falling due, a message that could not be delivered); this module decides who hears of it, on
which channels, in which language, with which words in its context, and under which
idempotency key, and writes the outbox rows. The outbox (`notifiers/outbox.py`) only claims and
records them, and `notifiers/delivery.py` renders the template of the same name under
`notifiers/templates/{vi,en}/`. How one person is addressed (their language, their channels,
their name in keys) and the shape of an outbox row are in `notifiers/addressing.py`.

The recipient rules, side by side:

| message | goes to |
| --- | --- |
| `referral.new` | the partner's contacts of the lowest active rank, on each one's first channel (Zalo, SMS or e-mail; the rest wait as its fallback: fallback.py) |
| `step.reminder`/`overdue`/`escalation` | the pathway's ladder says whom (`People.for_alert`) |
| `referral.answered` | the referral's coordinator, by e-mail |
| `step.yours` | the partner's first contacts, when a step is theirs again (re-booked, resumed, after the office's step) |
| `referral.no_show` | the referral's coordinator, by e-mail |
| `client.remind` | a peer group's first contacts, asked to remind the client (codes only) |
| `referral.closed` | whoever `referral.new` reached, on the channel that last reached them, in the same language |
| `digest.daily` | every active manager with an e-mail |
| `message.dead` | the referral's coordinator and every manager, by e-mail |
| `webhook` | each subscription that wants the event |
| `extension.requested` | the referral's coordinator, by e-mail (more time beyond the step's limit) |
| `extension.decided` | the contact who asked for more time, on their first channel |

Idempotency keys never change form: rows already in a database keep their meaning, and queueing
the same message twice stays a no-op.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.config.areas import in_force
from referrals.models.deadlines import ACTOR
from referrals.models.directory import Contact, Organization, Service
from referrals.models.lifecycle import OUT
from referrals.models.people import Role, User
from referrals.models.policy import area_scope
from referrals.models.workflow import Notification, Referral

# A person's language, channels and name in keys, and the outbox row (all importable from here).
from referrals.notifiers.addressing import (
    STAFF_LANGUAGE,
    Person,
    after,
    channels_of,
    in_language,
    language_of,
    outbox_row,
    queue,
    who,
)


class Template(StrEnum):
    """Every kind of message; the value names its template file."""

    new = "referral.new"
    closed = "referral.closed"
    answered = "referral.answered"
    reminder = "step.reminder"
    overdue = "step.overdue"
    escalation = "step.escalation"
    yours = "step.yours"
    no_show = "referral.no_show"
    remind = "client.remind"
    digest = "digest.daily"
    dead = "message.dead"
    webhook = "webhook"
    extension_asked = "extension.requested"
    extension_decided = "extension.decided"
    privacy = "privacy.alert"  # data-protection work, to managers by e-mail


# An alert of the deadline ladder -> its message; the ones an answer to the step makes pointless.
ALERTS = {
    "reminder": Template.reminder,
    "overdue": Template.overdue,
    "escalation": Template.escalation,
}
CHASING = tuple(t.value for t in ALERTS.values())
# What partner contacts are sent (on their own channels, Zalo among them: each needs its ZNS
# template there); the rest goes to staff by e-mail.
PARTNER_MESSAGES = (
    Template.new.value,
    Template.closed.value,
    *CHASING,
    Template.yours.value,
    Template.remind.value,
    Template.extension_decided.value,
)


def first_rank(
    contacts: Sequence[Contact], *, backup: bool = False
) -> tuple[list[Contact], list[str]]:
    """A partner's contacts asked first: the lowest active rank (with `backup`, the next one);
    and why any contact of a rank up to it was passed over. `contacts` are in rank order."""
    ranks = sorted({c.rank for c in contacts if c.active})
    index = 1 if backup else 0
    if len(ranks) <= index:
        return [], [f"the partner has no active {'backup ' if backup else ''}contact"]
    wanted = ranks[index]
    skipped = [
        f"contact {c.id} (rank {c.rank}) is inactive"
        for c in contacts
        if not c.active and c.rank <= wanted
    ]
    return [c for c in contacts if c.active and c.rank == wanted], skipped


def first_contacts(session: Session, organization_id: int) -> list[Contact]:
    """An organisation's contacts asked first (`first_rank`), read for one message."""
    found = session.scalars(
        select(Contact)
        .where(col(Contact.organization_id) == organization_id)
        .order_by(col(Contact.rank), col(Contact.id))
    )
    return first_rank(list(found))[0]


def to_coordinator(
    session: Session,
    *,
    referral: Referral,
    template: Template,
    context: dict[str, Any],
    key: str,
    now: dt.datetime,
) -> int:
    """One e-mail to the referral's coordinator (while active with an address), under `key`."""
    told, _ = coordinator_of(session.get(User, referral.coordinator_id))
    rows = [
        outbox_row(
            template=template,
            person=user,
            channel="email",
            language=language_of(user),
            context=context,
            key=key,
            now=now,
            referral_id=referral.id,
        )
        for user in told
    ]
    return queue(session, rows)


def coordinator_of(user: User | None) -> tuple[list[User], list[str]]:
    """A referral's coordinator is told by e-mail while active with an address; else no one,
    and why."""
    if user is None or not user.active or not user.email:
        name = user.username if user else "?"
        return [], [f"the coordinator has no e-mail or is inactive ({name})"]
    return [user], []


@dataclass
class People:
    """The directory's people, loaded once for a batch (small tables), and the recipient rules."""

    contacts: dict[int, list[Contact]]  # by organisation, in rank order, inactive ones included
    users: dict[int, User]

    @classmethod
    def load(cls, session: Session, on: dt.date | None = None) -> People:
        """With ON, a contact not in force that day (partners.yaml `valid_from`/`valid_to`:
        someone who left, or not yet started) is not among the partner's contacts."""
        contacts: dict[int, list[Contact]] = {}
        for c in session.scalars(select(Contact).order_by(col(Contact.rank), col(Contact.id))):
            if on is None or in_force(c, on):
                contacts.setdefault(c.organization_id, []).append(c)
        users: dict[int, User] = {}
        for u in session.scalars(select(User)):
            assert u.id is not None  # a loaded row has its id
            users[u.id] = u
        return cls(contacts, users)

    def partner(self, org_id: int, *, backup: bool = False) -> tuple[list[Contact], list[str]]:
        """The partner's contacts asked first (or its backups), and who was passed over."""
        return first_rank(self.contacts.get(org_id, []), backup=backup)

    def coordinator(self, user_id: int | None) -> tuple[list[User], list[str]]:
        return coordinator_of(self.users.get(user_id) if user_id is not None else None)

    def managers(self, area: str) -> tuple[list[User], list[str]]:
        """The managers of a district (and those of every district, and those of a district
        it took over from: policy.area_scope), with an e-mail."""
        found = [
            u
            for u in self.users.values()
            if u.role == Role.manager.value
            and u.active
            and (u.area_key is None or area in area_scope(u.area_key))
        ]
        skipped = [f"manager {u.username} has no e-mail" for u in found if not u.email]
        if not found:
            skipped.append(f"no active manager for {area}")
        return [u for u in found if u.email], skipped

    def for_alert(
        self, to: str, *, partner_step: bool, org_id: int, coordinator_id: int, area: str
    ) -> tuple[Sequence[Person], list[str]]:
        """Who an alert of the ladder goes to (`to`: actor, partner_backup, coordinator or
        managers), and why anyone it should have reached is not among them."""
        if to == ACTOR and partner_step:
            return self.partner(org_id)
        if to == "partner_backup":
            if not partner_step:
                return [], ["the step is the coordinator's: no partner contact to escalate to"]
            return self.partner(org_id, backup=True)
        if to in (ACTOR, "coordinator"):
            return self.coordinator(coordinator_id)
        return self.managers(area)


def _step_context(
    language: str,
    code: str,
    service: Service,
    step: dict[str, Any],
    due: dt.datetime,
    urgent: bool,
) -> dict[str, Any]:
    """What a prompt to a partner says of the step it asks for, in the contact's language."""
    return {
        "code": code,
        "service": in_language(language, service.name, service.name_en),
        "step": step["key"],
        "step_name": in_language(language, step["name"], step["name_en"]),
        "due_at": due.isoformat(),
        "urgent": urgent,
    }


def new_referral(
    *,
    referral_id: int,
    code: str,
    contacts: Iterable[Contact],
    service: Service,
    step: dict[str, Any],
    due: dt.datetime,
    urgent: bool,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """A launched referral: its partner's first contacts are asked to acknowledge it."""
    return _to_contacts(
        Template.new,
        contacts,
        context=lambda language: _step_context(language, code, service, step, due, urgent),
        key=lambda contact, channel: f"{code}:{Template.new}:{contact.id}:{channel}",
        now=now,
        referral_id=referral_id,
    )


def _to_contacts(
    template: Template,
    contacts: Iterable[Contact],
    *,
    context: Callable[[str], dict[str, Any]],
    key: Callable[[Contact, str], str],
    now: dt.datetime,
    referral_id: int | None,
) -> list[dict[str, Any]]:
    """Outbox rows of one message to partner contacts: each in their language (`context` of
    it), on the first of their channels with the rest as its fallback, under `key` of the
    contact and channel."""
    rows = []
    for contact in contacts:
        language = language_of(contact)
        chain = channels_of(contact)
        if chain:
            rows.append(
                outbox_row(
                    template=template,
                    person=contact,
                    channel=chain[0],
                    language=language,
                    context=context(language),
                    key=key(contact, chain[0]),
                    now=now,
                    referral_id=referral_id,
                    fallback=chain[1:],
                )
            )
    return rows


@dataclass(frozen=True)
class DueStep:
    """What an alert says about its step (codes and names only, never the client)."""

    referral_id: int
    code: str
    step_id: int
    step: dict[str, Any]  # the pathway's definition of the step
    due_at: dt.datetime
    urgent: bool
    days_late: int
    # On a step counted in hours (queries/lateness.py), whole hours late: the messages say
    # "22 h late" there, not "0 working days late". None on a step counted in days.
    hours_late: int | None = None


def step_alert(
    *,
    kind: str,
    level: int,
    about: DueStep,
    recipients: Iterable[Person],
    service: Service,
    now: dt.datetime,
    to: str | None = None,
) -> list[dict[str, Any]]:
    """A reminder, overdue notice or escalation of the deadline ladder, to its recipients;
    `to` is whom the ladder's rung names (an escalation says why its reader gets it)."""
    template = ALERTS[kind]
    rows = []
    for person in recipients:
        language = language_of(person)
        context = {
            "code": about.code,
            "service": in_language(language, service.name, service.name_en),
            "step": about.step["key"],
            "step_name": in_language(language, about.step["name"], about.step["name_en"]),
            "due_at": about.due_at.isoformat(),
            "urgent": about.urgent,
            "level": level,
            "days_late": about.days_late,
            "hours_late": about.hours_late,
            "escalated_to": to if kind == "escalation" else None,
        }
        chain = channels_of(person)
        if chain:
            key = (
                f"{about.code}:{about.step_id}:{kind}{level}:{about.due_at.isoformat()}"
                f":{who(person)}:{chain[0]}"
            )
            rows.append(
                outbox_row(
                    template=template,
                    person=person,
                    channel=chain[0],
                    language=language,
                    context=context,
                    key=key,
                    now=now,
                    referral_id=about.referral_id,
                    fallback=chain[1:],
                )
            )
    return rows


def referral_closed(session: Session, referral: Referral, now: dt.datetime) -> int:
    """Whoever received the referral learns it is closed: same contacts, language, and the
    channel that last reached them (the one the prompt did not move on from), the rest of their
    channels after it as its fallback."""
    told = session.scalars(
        select(Notification).where(
            col(Notification.referral_id) == referral.id,
            col(Notification.template) == Template.new.value,
            col(Notification.status).in_([s.value for s in OUT]),
            col(Notification.fell_back_at).is_(None),
        )
    )
    rows = []
    for n in told:
        contact = session.get(Contact, n.contact_id) if n.contact_id else None
        context = {
            "code": referral.code,
            "service": n.context["service"],
            "closed_at": now.isoformat(),
        }
        key = f"{referral.code}:{Template.closed}:{n.contact_id}:{n.channel}"
        row = outbox_row(
            template=Template.closed,
            person=None,
            channel=n.channel,
            language=n.language,
            context=context,
            key=key,
            now=now,
            referral_id=referral.id,
            fallback=after(channels_of(contact), n.channel) if contact else [],
        )
        rows.append({**row, "contact_id": n.contact_id})
    return queue(session, rows)


def answered(
    session: Session,
    *,
    referral: Referral,
    context: dict[str, Any],
    message_id: int,
    now: dt.datetime,
    step: str | None = None,
) -> int:
    """The coordinator learns how a partner answered (through the link of `message_id`): once
    per message and, for a step other than the one the message asked about (one link serves
    every step of the partner's), once per message and `step`."""
    key = f"{referral.code}:answered:{message_id}" + (f":{step}" if step else "")
    return to_coordinator(
        session, referral=referral, template=Template.answered, context=context, key=key, now=now
    )


def step_yours(
    session: Session,
    *,
    referral: Referral,
    step_id: int,
    step: dict[str, Any],
    due: dt.datetime,
    why: str,
    now: dt.datetime,
) -> int:
    """A step is the partner's again (`why`: rebooked, resumed, or its turn after the office's
    step): its first contacts get a short prompt with their link, once per step and deadline."""
    service = session.get(Service, referral.service_id)
    assert service is not None
    urgent = referral.priority == "urgent"
    rows = _to_contacts(
        Template.yours,
        first_contacts(session, referral.organization_id),
        context=lambda language: (
            _step_context(language, referral.code, service, step, due, urgent) | {"why": why}
        ),
        key=lambda contact, channel: (
            f"{referral.code}:{Template.yours}:{step_id}:{due.isoformat()}:{contact.id}:{channel}"
        ),
        now=now,
        referral_id=referral.id,
    )
    # Once per step and deadline: a pause and a resume twice within one deadline tell once.
    told = set(
        session.scalars(
            select(col(Notification.idempotency_key)).where(
                col(Notification.idempotency_key).in_([r["idempotency_key"] for r in rows])
            )
        )
    )
    return queue(session, [r for r in rows if r["idempotency_key"] not in told])


def no_show(
    session: Session,
    *,
    referral: Referral,
    context: dict[str, Any],
    event_id: int,
    now: dt.datetime,
) -> int:
    """The coordinator learns the client did not come (from the partner or the sweep), once per
    recorded no-show, and chooses from the referral's page what comes next."""
    key = f"{referral.code}:{Template.no_show}:{event_id}"
    return to_coordinator(
        session, referral=referral, template=Template.no_show, context=context, key=key, now=now
    )


def remind_client(
    session: Session,
    *,
    referral: Referral,
    group: Organization,
    code: str,
    office_phone: str,
    event_id: int,
    now: dt.datetime,
) -> int:
    """A peer group's first contacts are asked to remind a client they know by `code` (the
    intake's, or the referral's) to get in touch with the office: codes only, never who."""
    assert group.id is not None  # a loaded row has its id
    rows = _to_contacts(
        Template.remind,
        first_contacts(session, group.id),
        context=lambda _: {"code": code, "office_phone": office_phone, "referral": referral.code},
        key=lambda contact, channel: (
            f"{referral.code}:{Template.remind}:{event_id}:{contact.id}:{channel}"
        ),
        now=now,
        referral_id=referral.id,
    )
    return queue(session, rows)


def digest_key(day: dt.date, manager: User) -> str:
    return f"digest:{day.isoformat()}:{manager.id}"


def digest_readers(session: Session) -> list[User]:
    """Every active manager with an e-mail reads the morning digest."""
    query = select(User).where(
        col(User.role) == Role.manager.value,
        col(User.active),
        col(User.email).is_not(None),
    )
    return list(session.scalars(query))


def queued_digest(session: Session, day: dt.date, manager: User) -> bool:
    key = digest_key(day, manager)
    found = session.scalar(
        select(col(Notification.id)).where(col(Notification.idempotency_key) == key)
    )
    return found is not None


def digest(
    session: Session, *, manager: User, day: dt.date, context: dict[str, Any], now: dt.datetime
) -> int:
    """The manager's morning digest for `day` (its key names the day: once a day)."""
    row = outbox_row(
        template=Template.digest,
        person=manager,
        channel="email",
        language=language_of(manager),
        context=context,
        key=digest_key(day, manager),
        now=now,
        referral_id=None,
    )
    return queue(session, [row])


def dead_message(
    session: Session,
    *,
    message_id: int,
    referral_id: int | None,
    context: dict[str, Any],
    now: dt.datetime,
) -> int:
    """A message that will not be delivered: its referral's coordinator and every manager are
    told by e-mail (the referral's code and partner, never its client)."""
    ref = None
    if referral_id is not None:
        ref = session.execute(
            select(col(Referral.code), col(Referral.coordinator_id), col(Organization.name))
            .join(Organization, col(Organization.id) == col(Referral.organization_id))
            .where(col(Referral.id) == referral_id)
        ).first()
    people = select(User).where(col(User.active), col(User.email).is_not(None))
    rule = col(User.role) == Role.manager.value
    if ref is not None:
        rule = rule | (col(User.id) == ref.coordinator_id)
    context = {"code": ref.code if ref else "-", "partner": ref.name if ref else "-", **context}
    rows = [
        outbox_row(
            template=Template.dead,
            person=user,
            channel="email",
            language=language_of(user),
            context={**context, "message_id": message_id},
            key=f"{message_id}:{Template.dead}:{user.id}:{now.isoformat()}",
            now=now,
            referral_id=referral_id,
        )
        for user in session.scalars(people.where(rule).order_by(col(User.id)))
    ]
    return queue(session, rows)


def webhook(
    *, hook_id: int, event_id: int, referral_id: int | None, now: dt.datetime
) -> dict[str, Any]:
    """An event for a subscription: the body is built when it is sent, from the event."""
    row = outbox_row(
        template=Template.webhook,
        person=None,
        channel="webhook",
        language=STAFF_LANGUAGE,
        context={"webhook": hook_id, "event": event_id},
        key=f"webhook:{hook_id}:{event_id}",
        now=now,
        referral_id=referral_id,
    )
    return row


def extension_asked(
    session: Session,
    *,
    referral: Referral,
    extension_id: int,
    context: dict[str, Any],
    now: dt.datetime,
) -> int:
    """The coordinator is asked to decide a partner's request for more time beyond the step's
    limit (pathways.yaml `extend_limit`), once per request; the reason stays on the referral's
    page (it may name the client), the message says only that one waits."""
    return to_coordinator(
        session,
        referral=referral,
        template=Template.extension_asked,
        context=context,
        key=f"{referral.code}:{Template.extension_asked}:{extension_id}",
        now=now,
    )


def extension_decided(
    session: Session,
    *,
    referral: Referral,
    extension_id: int,
    contact: Contact,
    step: dict[str, Any],
    granted: bool,
    due: dt.datetime,
    asked: dt.datetime,
    now: dt.datetime,
) -> int:
    """The contact who asked for more time learns the coordinator's answer, on their channels,
    with a fresh link to its page (`due`: the step's deadline now, moved or not), once per
    request and channel."""
    if not contact.active:
        return 0
    service = session.get(Service, referral.service_id)
    assert service is not None
    language = language_of(contact)
    context = {
        "code": referral.code,
        "service": in_language(language, service.name, service.name_en),
        "step": step["key"],
        "step_name": in_language(language, step["name"], step["name_en"]),
        "granted": granted,
        "due_at": due.isoformat(),
        "new_due_at": asked.isoformat(),
    }
    chain = channels_of(contact)
    rows = [
        outbox_row(
            template=Template.extension_decided,
            person=contact,
            channel=channel,
            language=language,
            context=context,
            key=f"{referral.code}:{Template.extension_decided}:{extension_id}:{contact.id}:{channel}",
            now=now,
            referral_id=referral.id,
            fallback=chain[1:],
        )
        for channel in chain[:1]
    ]
    return queue(session, rows)
