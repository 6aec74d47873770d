"""The outbox's claim and acknowledgement: set-based UPDATEs guarded by status and lease.

A delivery pass claims due rows by stamping a lease (until when) and a token (who); PostgreSQL
skips rows another worker has locked (`FOR UPDATE SKIP LOCKED`), SQLite serialises writers. Every
outcome is recorded only if the row still carries our token, so a pass whose lease ran out (it
crashed or stalled, and another pass took over) cannot overwrite the newer outcome. A crash
between sending and recording leaves the row leased: it is sent again when the lease expires,
which is the one repeat the design allows, and nothing is ever lost.

Leases are short (a minute) and renewed while their sender works: a pass opens a `Keeper`, every
claim made in that context takes the keeper's token and hands it its rows, and the keeper's
thread pushes their `lease_until` forward every third of a lease until they are recorded. A slow
batch therefore keeps its rows however long it takes, and a dead sender's rows are free one lease
after its last renewal (issue 17: they used to wait five minutes).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import random
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlmodel import Session, col

from referrals.config.province import Delivery
from referrals.infra.db import is_postgres, transaction
from referrals.models.errors import NotFound
from referrals.models.lifecycle import MessageStatus, message_move, message_sources
from referrals.models.policy import Acting, actor_of, require_role
from referrals.models.roles import Role
from referrals.models.subscriptions import Webhook
from referrals.models.workflow import Event, Notification
from referrals.notifiers import fallback, messages
from referrals.notifiers.kick import mark

N = Notification
_notifications: Table = N.__table__  # type: ignore[attr-defined]  # SQLModel does not declare `__table__`
ALERT = messages.Template.dead.value
log = logging.getLogger("referrals.deliver")


@dataclass(frozen=True)
class Claimed:
    id: int
    referral_id: int | None
    contact_id: int | None
    user_id: int | None
    channel: str
    template: str
    language: str
    context: dict[str, Any]
    attempts: int
    token: str
    fallback: list[str] = field(default_factory=list)  # the contact's channels left to try


def anything_to_do(engine: Engine, *, now: dt.datetime) -> bool:
    """One query: is a message due (leased or not), an event not yet fanned out to an active
    webhook, or a sent message whose receipt is overdue? A delivery pass with neither ends there (issue 21: an idle pass costs one query,
    not the webhooks' fan-out, the directory's load and the claims it used to make)."""
    due = exists().where(col(N.status).in_(message_sources("send")), col(N.next_attempt_at) <= now)
    unfanned = exists().where(
        col(Webhook.active),
        exists().where(col(Event.id) > col(Webhook.after_event_id)).correlate(Webhook),
    )
    unconfirmed = exists().where(  # its turn is up: the contact's next channel (fallback.py)
        col(N.status) == MessageStatus.sent.value,
        col(N.confirm_by) <= now,
        col(N.fell_back_at).is_(None),
    )
    with engine.connect() as db:
        return bool(db.execute(select(or_(due, unfanned, unconfirmed))).scalar())


def claim(
    session: Session, *, kinds: list[str], now: dt.datetime, limit: int, lease_seconds: int
) -> list[Claimed]:
    """Lease up to `limit` due messages on the channels that are on, oldest first.

    Inside a `Keeper`, the lease carries the keeper's token and the keeper renews it; a row
    whose lease ran out while it still carries that token is ours already and is not taken
    twice."""
    keeper = _keeper.get()
    token = keeper.token if keeper is not None else secrets.token_hex(8)
    ours = col(N.lease_token) == token
    free = or_(
        col(N.lease_until).is_(None),
        and_(col(N.lease_until) <= now, or_(col(N.lease_token).is_(None), ~ours)),
    )
    due = (
        select(col(N.id))
        .where(
            col(N.status).in_(message_sources("send")),
            col(N.channel).in_(kinds),
            col(N.next_attempt_at) <= now,
            free,
        )
        .order_by(col(N.next_attempt_at), col(N.id))
        .limit(limit)
    )
    which: Select[tuple[int | None]] | list[int | None] = due
    if is_postgres(session):
        # Lock the rows first, then stamp them: PostgreSQL may re-run an `IN (... LIMIT n FOR
        # UPDATE SKIP LOCKED)` subquery inside an UPDATE and take more than n rows.
        ids = list(session.scalars(due.with_for_update(skip_locked=True)))
        if not ids:
            return []
        which = ids
    t = _notifications.c  # Core, not the ORM's bulk-update path: this runs once per batch
    stmt = (
        update(_notifications)
        .where(t.id.in_(which), t.status.in_(message_sources("send")), free)
        .values(lease_until=now + dt.timedelta(seconds=lease_seconds), lease_token=token)
        .returning(
            t.id,
            t.referral_id,
            t.contact_id,
            t.user_id,
            t.channel,
            t.template,
            t.language,
            t.context,
            t.attempts,
            t.fallback,
        )
    )
    rows = session.connection().execute(stmt).all()
    if keeper is not None:
        keeper.hold(row.id for row in rows)
    return sorted((Claimed(**row._asdict(), token=token) for row in rows), key=lambda c: c.id)


_keeper: contextvars.ContextVar[Keeper | None] = contextvars.ContextVar("keeper", default=None)


class Keeper:
    """Renews the leases of the claims made in its context while it is open (`with Keeper(...)`).

    A daemon thread, on its own connection, sets `lease_until` to `clock() + lease_seconds` for
    the rows it holds every `lease_seconds / 3` seconds, as long as they still carry its token:
    a row recorded (token cleared) or taken over by another sender after a lapse is dropped,
    never taken back. On PostgreSQL it skips rows locked at that moment (a claim not yet
    committed, an outcome being recorded: no waiting on them, so no deadlock) and renews them
    the next time. The pass that opened it is the sender: when its process dies, the thread
    dies with it, and its rows come back one lease later."""

    def __init__(
        self,
        engine: Engine,
        *,
        lease_seconds: int,
        clock: Callable[[], dt.datetime],
        every: float | None = None,
    ) -> None:
        self.engine = engine
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.clock = clock
        self.every = every if every is not None else lease_seconds / 3
        self.token = secrets.token_hex(8)
        self.renewals = 0  # passes of the thread that renewed at least one row
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset: contextvars.Token[Keeper | None] | None = None

    def hold(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._held.update(ids)

    @property
    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def renew(self) -> int:
        """Extend the leases still ours now; returns how many rows were renewed."""
        ids = sorted(self.held)
        if not ids:
            return 0
        table = _notifications
        t = table.c
        until = self.clock() + self.lease
        with transaction(self.engine) as s:
            c = s.connection()
            if is_postgres(s):
                rows = c.execute(
                    select(t.id, t.lease_token)
                    .where(t.id.in_(ids))
                    .order_by(t.id)
                    .with_for_update(skip_locked=True)
                ).all()
                ours = [i for i, token in rows if token == self.token]
                lost = {i for i, token in rows if token != self.token}
                if ours:
                    c.execute(update(table).where(t.id.in_(ours)).values(lease_until=until))
            else:  # one writer at a time: what the UPDATE does not match is no longer ours
                stmt = (
                    update(table)
                    .where(t.id.in_(ids), t.lease_token == self.token)
                    .values(lease_until=until)
                    .returning(t.id)
                )
                ours = list(c.execute(stmt).scalars())
                lost = set(ids) - set(ours)
        with self._lock:
            self._held -= lost
        if ours:
            self.renewals += 1
        return len(ours)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.renew()
            except Exception:  # the database is away: try again; the lease covers two misses
                log.warning(
                    "could not renew the leases of %d messages", len(self.held), exc_info=True
                )

    def __enter__(self) -> Keeper:
        self._reset = _keeper.set(self)
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._reset is not None:
            _keeper.reset(self._reset)


def _ours(c: Claimed) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (col(N.id) == c.id, col(N.lease_token) == c.token)


# One statement, built once, run as executemany: recording is the pass's hot path.
_SENT = (
    update(_notifications)
    .where(
        _notifications.c.id == bindparam("b_id"),
        _notifications.c.lease_token == bindparam("b_token"),
    )
    .values(
        status=MessageStatus.sent.value,
        sent_at=bindparam("b_now"),
        attempts=_notifications.c.attempts + 1,
        subject=bindparam("b_subject"),
        body=bindparam("b_body"),
        provider_id=bindparam("b_provider"),
        units=bindparam("b_units"),
        confirm_by=bindparam("b_confirm"),
        last_error=None,
        lease_until=None,
        lease_token=None,
    )
)


@dataclass(frozen=True)
class Sent:
    """What is recorded of a message the gateway took."""

    claimed: Claimed
    subject: str | None
    body: str
    provider_id: str | None = None  # the gateway's id, which its receipt will name
    units: int | None = None  # what it bills: SMS segments, one Zalo message
    confirm_by: dt.datetime | None = None  # a receipt is expected by then


def mark_sent(session: Session, sent: list[Sent], *, now: dt.datetime) -> int:
    """Record deliveries at once; returns how many were still ours."""
    if not sent:
        return 0
    params = [
        {
            "b_id": m.claimed.id,
            "b_token": m.claimed.token,
            "b_now": now,
            "b_subject": m.subject,
            "b_body": m.body,
            "b_provider": m.provider_id,
            "b_units": m.units,
            "b_confirm": m.confirm_by,
        }
        for m in sent
    ]
    result = session.connection().execute(_SENT, params)
    return result.rowcount if result.rowcount >= 0 else len(sent)


def retry_delay(attempts: int, delivery: Delivery, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half the step fixed, half random, capped."""
    step = min(delivery.max_retry_seconds, delivery.first_retry_seconds * 2 ** (attempts - 1))
    return step / 2 + (rng or random).random() * step / 2


def mark_failed(
    session: Session,
    c: Claimed,
    *,
    now: dt.datetime,
    error: str,
    delivery: Delivery,
    permanent: bool = False,
) -> MessageStatus | None:
    """Record a failed attempt: retry later, or dead (with alerts) after the last attempt."""
    attempts = c.attempts + 1
    if permanent or attempts >= delivery.max_attempts:
        return MessageStatus.dead if die(session, c, now=now, error=error) else None
    result = session.exec(
        update(N)
        .where(*_ours(c))
        .values(
            status=MessageStatus.failed.value,
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=now + dt.timedelta(seconds=retry_delay(attempts, delivery)),
            lease_until=None,
            lease_token=None,
        )
    )
    return MessageStatus.failed if result.rowcount == 1 else None


def die(session: Session, c: Claimed, *, now: dt.datetime, error: str) -> bool:
    """Give up on a message on its channel: mark it dead, and hand it on to the contact's next
    channel, or, with none left, tell the people who can act on it."""
    result = session.exec(
        update(N)
        .where(*_ours(c))
        .values(
            status=MessageStatus.dead.value,
            attempts=col(N.attempts) + 1,
            last_error=error[:500],
            lease_until=None,
            lease_token=None,
        )
    )
    if result.rowcount != 1:
        return False
    if c.fallback and fallback.hand_on(session, c.id, reason=fallback.DEAD, now=now):
        return True  # the contact's next channel carries it: no one need act
    _alert(session, c, now=now, error=error[:200])
    return True


def _alert(session: Session, c: Claimed, *, now: dt.datetime, error: str) -> None:
    """An event on the referral's timeline, and an e-mail to its coordinator and the managers."""
    session.add(
        Event(
            referral_id=c.referral_id,
            kind="message.dead",
            at=now,
            actor="system",
            data={"message": c.id, "channel": c.channel, "template": c.template},
        )
    )
    if c.template == ALERT:
        return  # an alert that cannot be delivered is on the timeline; do not alert about it
    if c.channel == "webhook":
        return  # another system's endpoint: the dashboard's dead messages show it to admins
    context = {"template": c.template, "channel": c.channel, "attempts": c.attempts + 1}
    messages.dead_message(
        session,
        message_id=c.id,
        referral_id=c.referral_id,
        context={**context, "error": error},
        now=now,
    )


def defer(session: Session, c: Claimed, *, until: dt.datetime) -> None:
    """Put a message back untouched until `until` (quiet hours): not an attempt."""
    session.execute(
        update(N).where(*_ours(c)).values(next_attempt_at=until, lease_until=None, lease_token=None)
    )


def retry(session: Session, *, message_id: int, by: Acting, now: dt.datetime) -> Notification:
    """Send a failed or dead message again now, with a fresh count of attempts; an admin's act."""
    require_role(by, Role.admin, doing="outbox retry")
    row = session.get(N, message_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no message {message_id}")
    new = message_move("retry", MessageStatus(row.status))
    session.add(
        Event(
            referral_id=row.referral_id,
            kind="message.retry",
            at=now,
            actor=actor_of(by),
            data={"message": row.id, "was": row.status, "attempts": row.attempts},
        )
    )
    row.status, row.attempts, row.next_attempt_at = new.value, 0, now
    row.lease_until = row.lease_token = row.last_error = None
    mark(session)  # sent at once after the commit
    return row


def waiting(session: Session, *, kinds_off: Sequence[str], now: dt.datetime) -> dict[str, int]:
    """How many due messages wait on each channel that is off."""
    if not kinds_off:
        return {}
    rows = (
        session.execute(
            select(col(N.channel), func.count())
            .where(
                col(N.status).in_(message_sources("send")),
                col(N.channel).in_(kinds_off),
                col(N.next_attempt_at) <= now,
            )
            .group_by(col(N.channel))
        )
        .tuples()
        .all()
    )
    return dict(rows)
