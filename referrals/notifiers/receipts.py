"""A gateway's delivery receipts recorded: a sent message becomes delivered or undelivered.

The web endpoint (web/receipts.py) hands over what the channel's plugin read and checked
(plugins/base.py: forged or stale callbacks never get here). Each receipt finds its message by
the gateway's id on that channel; the move is a conditional UPDATE from `sent`, so a replayed
receipt, or a second one for the same message, changes nothing and is counted as `already`.
An undelivered message hands the prompt on to the contact's next channel (fallback.py); with
none left, the referral's coordinator and the managers are told, as for a dead message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlmodel import Session, col

from referrals.models.lifecycle import MESSAGE_MOVES, MessageStatus
from referrals.models.workflow import Event, Notification
from referrals.notifiers import fallback, messages
from referrals.notifiers.plugins.base import Receipt

N = Notification


@dataclass
class Recorded:
    applied: int = 0  # messages moved to delivered or undelivered
    unknown: int = 0  # no message of ours has that id on that channel: nothing changed
    already: int = 0  # the message had its receipt (a replay, or a late second word)


def record(
    session: Session, *, channel: str, receipts: list[Receipt], now: dt.datetime
) -> Recorded:
    """Apply the receipts of one callback, in the caller's transaction."""
    done = Recorded()
    for receipt in receipts:
        row = _message(session, channel, receipt)
        if row is None or row.id is None:
            done.unknown += 1
            continue
        sources, status = MESSAGE_MOVES["deliver" if receipt.delivered else "undeliver"]
        moved = session.connection().execute(
            update(N)
            .where(col(N.id) == row.id, col(N.status).in_([s.value for s in sources]))
            .values(
                status=status.value,
                receipt_at=receipt.at or now,
                last_error=None if receipt.delivered else (receipt.reason or "undelivered")[:500],
            )
        )
        if moved.rowcount != 1:
            done.already += 1
            continue
        done.applied += 1
        session.add(
            Event(
                referral_id=row.referral_id,
                kind=f"message.{status.value}",
                at=now,
                actor="system",
                data={"message": row.id, "channel": channel, "reason": receipt.reason},
            )
        )
        if status is MessageStatus.undelivered:
            _undelivered(session, row, reason=receipt.reason or "undelivered", now=now)
    return done


def _message(session: Session, channel: str, receipt: Receipt) -> Notification | None:
    """The message a receipt is about: by the gateway's id, or by ours when the gateway took
    it without giving one (eSMS answers a repeated request id so). When the receipt carries
    our id too, both must name the same message: a signed callback URL of one message cannot
    carry another's receipt."""
    row = session.scalars(
        select(N).where(col(N.channel) == channel, col(N.provider_id) == receipt.provider_id)
    ).first()
    ours = receipt.tracking_id
    if row is None and ours and ours.isdigit():
        row = session.get(N, int(ours))
        if row is None or row.channel != channel or row.provider_id is not None:
            return None
    if row is not None and ours and ours != str(row.id):
        return None
    return row


def _undelivered(session: Session, row: Notification, *, reason: str, now: dt.datetime) -> None:
    """The next channel carries the prompt; with none left (and the prompt still mattering),
    the people who can act are told."""
    assert row.id is not None  # a loaded row
    if row.fallback:
        fallback.hand_on(session, row.id, reason=fallback.UNDELIVERED, now=now)
    elif row.fell_back_at is None and not fallback.pointless(session, row):
        messages.dead_message(
            session,
            message_id=row.id,
            referral_id=row.referral_id,
            context={
                "template": row.template,
                "channel": row.channel,
                "attempts": row.attempts,
                "error": reason[:200],
            },
            now=now,
        )
