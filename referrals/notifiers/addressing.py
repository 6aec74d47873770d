"""How a message is addressed to one person: the language they read, the channels they have,
how events and idempotency keys name them, and the outbox row itself.

`messages.py` decides who is told of what and builds its rows with `outbox_row`; `queue` writes
them. Every name here is also importable from `referrals.notifiers.messages`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from referrals.config.fields import DEFAULT_ORDER, reachable
from referrals.infra.db import insert_many
from referrals.models.directory import Contact
from referrals.models.lifecycle import MessageStatus
from referrals.models.people import User
from referrals.models.workflow import Notification
from referrals.notifiers.kick import mark

if TYPE_CHECKING:
    from referrals.notifiers.messages import Template

STAFF_LANGUAGE = "vi"  # staff messages are in the office's language; their pages follow a choice

Person = Contact | User


def language_of(person: Person | None, default: str = STAFF_LANGUAGE) -> str:
    """The language a person reads our messages and pages in: a partner contact's own; staff
    messages in the office's language; `default` when the person is gone."""
    if isinstance(person, Contact):
        return person.language
    return default if person is None else STAFF_LANGUAGE


def in_language(language: str, vi: str, en: str) -> str:
    """The Vietnamese or the English of a name, by the reader's language."""
    return vi if language == "vi" else en


def channels_of(person: Person) -> list[str]:
    """The channels a message to this person tries, in order, one at a time: a contact's own
    order (partners.yaml) or the province's (`delivery.order`), as `referrals init` stored it,
    keeping those it has an address for; staff by e-mail. The first is queued, the rest wait as
    its fallback (issue 24: never two channels at once for one message)."""
    if isinstance(person, Contact):
        order = person.channels if person.channels is not None else DEFAULT_ORDER
        return reachable(order, phone=person.phone, email=person.email)
    return ["email"] if person.email else []


def after(chain: list[str], channel: str) -> list[str]:
    """What is left to try once `channel` of `chain` has been tried."""
    return chain[chain.index(channel) + 1 :] if channel in chain else []


def who(person: Person) -> str:
    """How a recipient is named in events and keys: never by name."""
    return f"contact:{person.id}" if isinstance(person, Contact) else f"user:{person.username}"


def outbox_row(
    *,
    template: Template,
    person: Person | None,
    channel: str,
    language: str,
    context: dict[str, Any],
    key: str,
    now: dt.datetime,
    referral_id: int | None,
    fallback: list[str] | None = None,
) -> dict[str, Any]:
    """One queued message to `person` on `channel`, due now, under the idempotency `key`;
    `fallback`: the channels to try next, in order, if this one fails or is not confirmed."""
    return {
        "referral_id": referral_id,
        "contact_id": person.id if isinstance(person, Contact) else None,
        "user_id": person.id if isinstance(person, User) else None,
        "channel": channel,
        "template": template.value,
        "language": language,
        "context": context,
        "idempotency_key": key,
        "status": MessageStatus.queued.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "fallback": list(fallback or []),
    }


def queue(session: Session, rows: list[dict[str, Any]]) -> int:
    """Write the rows in one statement, to be sent at once after the session commits (kick.py);
    returns how many."""
    insert_many(session, Notification, rows)
    if rows:
        mark(session)
    return len(rows)
