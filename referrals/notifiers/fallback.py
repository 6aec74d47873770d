"""A message's turn on one channel ends, and the contact's next channel gets its own (issue 24).

A prompt to a partner contact is queued on the first of the contact's channels (Zalo, SMS,
e-mail, in the contact's or the province's order), with the rest as its `fallback`. Its turn
ends when it is dead (a permanent error, or the last attempt failed), when its receipt says
undelivered, when it was sent on a channel that reports delivery and no receipt came by
`confirm_by`, or when its channel is off where it is due. Then, once, the next channel's
message is queued: a copy under the idempotency key `<key>><channel>`, so no channel is ever
tried twice for one prompt, and never two at once (the next is queued only as one ends).

The guard is `fell_back_at`: a conditional UPDATE sets it, and only the transaction whose
UPDATE changed the row queues the next message; two passes (or a receipt and a pass) that
find the same row end its turn once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from referrals.models.lifecycle import CLOSED, DUE, MessageStatus, ReferralStatus, StepStatus
from referrals.models.workflow import Event, Notification, Referral, Step
from referrals.notifiers import messages
from referrals.notifiers.addressing import queue

N = Notification
BATCH = 500  # messages handed on per statement, per pass

# Why a message's turn ended, as the timeline's event says it.
DEAD = "failed"
UNDELIVERED = "undelivered"
UNCONFIRMED = "unconfirmed"
OFF = "off"


def hand_on(session: Session, message_id: int, *, reason: str, now: dt.datetime) -> str | None:
    """End the message's turn; queue its next channel's message if it has one, and say so on
    its referral's timeline. Returns the next channel, or None (none left, or already ended)."""
    ended = session.connection().execute(
        update(N)
        .where(col(N.id) == message_id, col(N.fell_back_at).is_(None))
        .values(fell_back_at=now)
    )
    if ended.rowcount != 1:
        return None
    row = session.get(N, message_id)
    if row is None or not row.fallback or pointless(session, row):
        return None
    nxt, rest = row.fallback[0], list(row.fallback[1:])
    queue(session, [_next_row(row, nxt, rest, now)])
    session.add(
        Event(
            referral_id=row.referral_id,
            kind="message.fallback",
            at=now,
            actor="system",
            data={"message": row.id, "channel": row.channel, "to": nxt, "why": reason},
        )
    )
    return nxt


def pointless(session: Session, row: Notification) -> bool:
    """The prompt did its work or no longer matters, so no other channel should carry it: its
    link was used (it reached them), its referral is closed or no longer waits on the partner's
    answer to a new referral, or the step a reminder chases is no longer active."""
    if row.link_used_at is not None:
        return True
    if row.referral_id is None:
        return False
    referral = session.get(Referral, row.referral_id)
    if referral is None or referral.status in CLOSED:
        return True
    if row.template == messages.Template.new and referral.status != ReferralStatus.requested:
        return True
    if row.template in messages.CHASING:
        active = session.scalar(
            select(col(Step.id)).where(
                col(Step.referral_id) == row.referral_id,
                col(Step.key) == row.context.get("step"),
                col(Step.status) == StepStatus.active.value,
            )
        )
        return active is None
    return False


def _next_row(row: Notification, channel: str, rest: list[str], now: dt.datetime) -> dict[str, Any]:
    """The same message to the same person, on `channel`, due now."""
    return {
        "referral_id": row.referral_id,
        "contact_id": row.contact_id,
        "user_id": row.user_id,
        "channel": channel,
        "template": row.template,
        "language": row.language,
        "context": row.context,
        "idempotency_key": f"{row.idempotency_key}>{channel}"[:200],
        "status": MessageStatus.queued.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "fallback": rest,
    }


def unconfirmed(session: Session, *, now: dt.datetime) -> list[int]:
    """Sent messages whose receipt did not come in time and whose turn has not ended."""
    return list(
        session.scalars(
            select(col(N.id))
            .where(
                col(N.status) == MessageStatus.sent.value,
                col(N.confirm_by) <= now,
                col(N.fell_back_at).is_(None),
            )
            .order_by(col(N.confirm_by))
            .limit(BATCH)
        )
    )


def off(session: Session, *, kinds_on: Sequence[str], now: dt.datetime) -> list[int]:
    """Due messages on a channel that is off here, with a channel left to try."""
    rows = session.execute(
        select(col(N.id), col(N.fallback))
        .where(
            col(N.status).in_([s.value for s in DUE]),
            col(N.channel).not_in(list(kinds_on)),
            col(N.next_attempt_at) <= now,
            col(N.fell_back_at).is_(None),
            col(N.lease_token).is_(None),
        )
        .limit(BATCH)
    ).all()
    return [i for i, fallback in rows if fallback]


def hand_on_waiting(session: Session, *, kinds_on: Sequence[str], now: dt.datetime) -> int:
    """One pass's hand-ons: unconfirmed messages, and those due on a channel that is off (they
    are cancelled on it: the next channel carries the prompt). Returns how many moved on."""
    moved = 0
    for message_id in unconfirmed(session, now=now):
        moved += hand_on(session, message_id, reason=UNCONFIRMED, now=now) is not None
    for message_id in off(session, kinds_on=kinds_on, now=now):
        cancelled = session.connection().execute(
            N.cancelling(col(N.id) == message_id, col(N.lease_token).is_(None), reason=OFF)
        )
        if cancelled.rowcount == 1:
            moved += hand_on(session, message_id, reason=OFF, now=now) is not None
    return moved
