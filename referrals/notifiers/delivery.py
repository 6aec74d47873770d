"""One delivery pass: claim due messages, render them, send them through Apprise, record each.

Sending runs in a bounded thread pool (Apprise's plugins block); claiming and recording stay on
the calling thread, in short transactions on one connection, and at most `WINDOW_PER_WORKER`
messages per sender are ever sent and not yet recorded: that, and no more, is what a crash can
make us send twice. A fresh Apprise plugin per message: a reused one throttles itself.

The pass holds its leases for as long as it works (`outbox.Keeper` renews them every third of
`lease_seconds`, on the pass's clock: the given `now` plus the time since the pass began), so a
slow receiver cannot make another pass send its messages again, and the lease can be short: if
the process dies, its messages are free a minute later.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlmodel import Session

from referrals.config.province import quiet_window
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact
from referrals.models.links import link_url
from referrals.models.people import User
from referrals.notifiers import fallback, outbox
from referrals.notifiers.channels import ChannelError, Channels, instantiate, masked
from referrals.notifiers.plugins.base import use_tokens
from referrals.notifiers.rendering import Rendered, RenderError, render, render_zalo
from referrals.notifiers.sms import encoding
from referrals.notifiers.tokens import DatabaseTokens
from referrals.notifiers.webhooks import COUNTS as webhook_counts
from referrals.notifiers.webhooks import deliver_webhooks

log = logging.getLogger("referrals.deliver")
WINDOW_PER_WORKER = 4  # sent-but-unrecorded messages per worker: the most a crash can repeat


@dataclass(frozen=True)
class Result:
    """What one send found out (plugins/base.py): sent (no error) with the gateway's id, or
    why not, and whether retrying can help or the gateway asked us to wait."""

    error: str | None = None
    provider_id: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    receipts: bool = False  # the gateway will report delivery


# (url, message, our message id, the pass's clock) -> what happened
Send = Callable[[str, Rendered, str, Callable[[], dt.datetime]], Result]


@dataclass
class Summary:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0
    handed_on: int = 0  # to the contact's next channel: unconfirmed, or due on a channel off
    lost: int = 0  # outcomes not recorded: the lease had passed to another pass
    waiting: dict[str, int] = field(default_factory=dict)  # due, on a channel that is off
    webhooks: dict[str, int] = field(default_factory=dict)  # notifiers/webhooks.py

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Job:
    claimed: outbox.Claimed
    url: str
    message: Rendered


class _Capture(logging.Handler):
    """Apprise says why a send failed only in its log: keep each thread's lines apart."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None:
            lines.append(record.getMessage())

    @contextmanager
    def lines(self) -> Iterator[list[str]]:
        self.local.lines = []
        try:
            yield self.local.lines
        finally:
            self.local.lines = None


_capture = _Capture()
_apprise_log = logging.getLogger("apprise")
_apprise_log.addHandler(_capture)
_apprise_log.propagate = False  # its reasons are recorded per message, scrubbed, not printed


def send_apprise(
    url: str, message: Rendered, tracking_id: str, clock: Callable[[], dt.datetime]
) -> Result:
    """Send through a fresh plugin; our plugins also say the gateway's id, whether a failure is
    permanent, whether to wait, and whether a receipt will come (plugins/base.py). They learn
    our message id (the gateways echo it) and the pass's clock (eSMS's callback URL is signed
    with the time)."""
    plugin = instantiate(url)
    if plugin is None:
        return Result("Apprise does not accept the channel URL", permanent=True)
    plugin.tracking_id = tracking_id  # type: ignore[attr-defined]  # read by our plugins only
    plugin.clock = clock  # type: ignore[attr-defined]  # likewise
    with _capture.lines() as lines:
        try:
            ok = plugin.notify(body=message.body, title=message.subject or "")
        except Exception as exc:  # a plugin bug must not stop the pass
            return Result(f"{type(exc).__name__}: {exc}")
    provider_id = getattr(plugin, "provider_id", None)
    receipts = bool(getattr(plugin, "receipts", False))
    if ok:
        return Result(provider_id=provider_id, receipts=receipts)
    log.debug("not delivered through %s", masked(plugin))
    return Result(
        lines[-1] if lines else "not delivered (Apprise gave no reason)",
        provider_id=provider_id,
        permanent=bool(getattr(plugin, "permanent", False)),
        retry_after=getattr(plugin, "retry_after", None),
        receipts=receipts,
    )


def quiet_until(now: dt.datetime, window: str | None, tz: ZoneInfo) -> dt.datetime | None:
    """When the quiet hours containing `now` end, or None if `now` is not in them."""
    span = quiet_window(window)
    if span is None:
        return None
    start, end = span
    local = now.astimezone(tz)
    t = local.time()
    if start < end:
        inside, day = start <= t < end, local.date()
    else:  # across midnight
        inside = t >= start or t < end
        day = local.date() + dt.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return dt.datetime.combine(day, end, tzinfo=tz).astimezone(dt.UTC)


@dataclass
class _People:
    """Every contact and user, loaded once a pass: recipients, languages, quiet hours."""

    # Keyed like the rows' ids (`int | None` on the models; never None once stored).
    contacts: dict[int | None, Contact]
    users: dict[int | None, User]

    @classmethod
    def load(cls, session: Session) -> _People:
        return cls(
            contacts={c.id: c for c in session.scalars(select(Contact))},
            users={u.id: u for u in session.scalars(select(User))},
        )


def deliver(
    rt: Runtime,
    *,
    now: dt.datetime,
    limit: int | None = None,
    channels: Channels | None = None,
    send: Send = send_apprise,
) -> Summary:
    """One pass over the outbox: every due message on a channel that is on, up to `limit`."""
    cfg = rt.province.province.delivery
    channels = channels or Channels(cfg)
    channels.check()
    summary = Summary()
    if not outbox.anything_to_do(rt.engine, now=now):  # idle: one query, and done
        summary.webhooks = dict.fromkeys(webhook_counts, 0)
        return summary
    began = time.monotonic()

    def clock() -> dt.datetime:  # `now`, moving on: what leases are stamped and renewed with
        return now + dt.timedelta(seconds=time.monotonic() - began)

    use_tokens(DatabaseTokens(rt.engine, rt.ctx.vault))  # a gateway's rotating tokens, shared
    with outbox.Keeper(rt.engine, lease_seconds=cfg.lease_seconds, clock=clock):
        summary.webhooks = deliver_webhooks(rt.engine, vault=rt.ctx.vault, delivery=cfg, now=now)
        with transaction(rt.engine) as s:
            summary.handed_on = fallback.hand_on_waiting(s, kinds_on=channels.kinds, now=now)
        with transaction(rt.engine) as s:
            off = [k for k in cfg.channels if k not in channels.kinds]
            summary.waiting = outbox.waiting(s, kinds_off=off, now=now)
            people = _People.load(s)
        if not channels.kinds:
            return summary
        with rt.engine.connect() as db:  # one connection for the pass: no checkout per batch
            _pump(rt, db, channels, people, now, clock, limit, send, summary)
    log.info(
        "delivery pass: %d claimed, %d sent, %d failed, %d dead, %d deferred",
        summary.claimed,
        summary.sent,
        summary.failed,
        summary.dead,
        summary.deferred,
    )
    return summary


def _pump(
    rt: Runtime,
    db: Connection,
    channels: Channels,
    people: _People,
    now: dt.datetime,
    clock: Callable[[], dt.datetime],
    limit: int | None,
    send: Send,
    summary: Summary,
) -> None:
    """Claim, prepare, send and record until nothing is due (or `limit` is reached).

    Claims are stamped on the pass's clock, not `now`: a batch claimed ten minutes into a pass
    must not carry a lease that ran out before it was taken."""
    cfg = rt.province.province.delivery
    # A sliding window: at most `window` messages are sent and not yet recorded at any time,
    # which bounds what a crash can repeat. Outcomes are recorded two pools' worth at a time:
    # fewer, larger transactions keep this thread from starving the senders.
    window = cfg.concurrency * WINDOW_PER_WORKER
    queue: deque[Job] = deque()
    in_flight = 0
    finished: list[tuple[Job, Result]] = []
    ready = threading.Condition()
    drained = False

    def done(job: Job, future: Future[Result]) -> None:
        with ready:
            finished.append((job, future.result()))
            ready.notify()

    with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="deliver") as pool:
        while True:
            room = limit is None or summary.claimed < limit
            if len(queue) < window and not drained and room:
                n = window * 2
                n = n if limit is None else min(n, limit - summary.claimed)
                with transaction(db) as s:
                    batch = outbox.claim(
                        s,
                        kinds=channels.kinds,
                        now=clock(),
                        limit=n,
                        lease_seconds=cfg.lease_seconds,
                    )
                drained = not batch
                summary.claimed += len(batch)
                queue.extend(
                    j for c in batch if (j := _prepare(rt, db, c, people, channels, now, summary))
                )
            while queue and in_flight < window:
                job = queue.popleft()
                in_flight += 1
                future = pool.submit(send, job.url, job.message, str(job.claimed.id), clock)
                future.add_done_callback(partial(done, job))
            if not in_flight:
                if queue or (not drained and room):
                    continue
                break
            # Wake once per batch of outcomes, not once per message: every wake-up of this
            # thread waits for the GIL while the senders hold it.
            batch_size = min(2 * cfg.concurrency, in_flight)
            with ready:
                ready.wait_for(partial(_reached, finished, batch_size), timeout=0.25)
                outcomes, finished[:] = finished[:], []
            in_flight -= len(outcomes)
            if outcomes:
                _record(rt, db, outcomes, channels, now, summary)


def _reached(finished: list[tuple[Job, Result]], n: int) -> bool:
    """At least `n` outcomes are in (the pump's wake-up condition)."""
    return len(finished) >= n


def _prepare(
    rt: Runtime,
    db: Connection,
    c: outbox.Claimed,
    people: _People,
    channels: Channels,
    now: dt.datetime,
    summary: Summary,
) -> Job | None:
    """Render a claimed message for its recipient, or defer it (quiet hours), or give it up."""
    cfg = rt.province.province.delivery
    contact = people.contacts.get(c.contact_id) if c.contact_id else None
    user = people.users.get(c.user_id) if c.user_id else None
    tz = rt.settings.tz
    if c.channel != "email" and contact is not None and not c.context.get("urgent"):
        until = quiet_until(now, contact.quiet_hours or cfg.quiet_hours, tz)
        if until is not None:
            with transaction(db) as s:
                outbox.defer(s, c, until=until)
            summary.deferred += 1
            return None
    public = rt.settings.public_url.rstrip("/")
    if contact is not None:
        link = link_url(public, rt.ctx.vault, c.id)
    else:  # people of the office open the engine's own pages
        code = c.context.get("code")
        link = f"{public}/referrals/{code}" if code and code != "-" else f"{public}/"
    province = rt.province.province
    sender = (
        (cfg.sender or province.name) if c.language == "vi" else (cfg.sender_en or province.name_en)
    )
    context = {**c.context, "link": link, "sender": sender}
    try:
        if c.channel == "zalo":
            template = cfg.zalo_templates.get(c.template)
            message = render_zalo(c.template, template=template, context=context, tz=tz)
        else:
            message = render(
                c.template,
                channel=c.channel,
                language=c.language,
                context=context,
                tz=tz,
                unaccented=bool(contact and contact.sms_unaccented),
            )
        url = channels.url(
            c.channel,
            phone=contact.phone if contact else None,
            email=contact.email if contact else (user.email if user else None),
        )
    except (RenderError, ChannelError) as exc:  # retrying cannot help: move on, or tell people
        with transaction(db) as s:
            if outbox.mark_failed(s, c, now=now, error=str(exc), delivery=cfg, permanent=True):
                _ended(summary, c)
        log.warning("message %d given up on %s: %s", c.id, c.channel, exc)
        return None
    return Job(c, url, message)


def _sent(job: Job, result: Result, now: dt.datetime, confirm_minutes: int) -> outbox.Sent:
    """What is recorded of a message the gateway took: its id, what it bills, and by when its
    receipt should come (on a channel that sends receipts)."""
    units = {"sms": encoding(job.message.body).segments, "zalo": 1}.get(job.claimed.channel)
    confirm = now + dt.timedelta(minutes=confirm_minutes) if result.receipts else None
    return outbox.Sent(
        job.claimed, job.message.subject, job.message.body, result.provider_id, units, confirm
    )


def _record(
    rt: Runtime,
    db: Connection,
    outcomes: list[tuple[Job, Result]],
    channels: Channels,
    now: dt.datetime,
    summary: Summary,
) -> None:
    """Write what happened to finished sends, in one transaction."""
    delivery = rt.province.province.delivery
    sent = [_sent(j, r, now, delivery.confirm_minutes) for j, r in outcomes if r.error is None]
    wait = [(j.claimed, r.retry_after) for j, r in outcomes if r.error and r.retry_after]
    failed = [
        (j.claimed, channels.scrub(r.error), r.permanent)
        for j, r in outcomes
        if r.error and not r.retry_after
    ]
    with transaction(db) as s:
        recorded = outbox.mark_sent(s, sent, now=now)
        summary.sent += recorded
        summary.lost += len(sent) - recorded
        for c, seconds in wait:  # the gateway asked us to slow down: not an attempt
            outbox.defer(s, c, until=now + dt.timedelta(seconds=seconds))
            summary.deferred += 1
        statuses = [
            (
                c,
                error,
                outbox.mark_failed(
                    s, c, now=now, error=error, delivery=delivery, permanent=permanent
                ),
            )
            for c, error, permanent in failed
        ]
    for c, error, status in statuses:
        if status is None:
            summary.lost += 1
        elif status == "dead":
            _ended(summary, c)
            log.warning(
                "message %d dead on %s after %d attempts: %s",
                c.id,
                c.channel,
                c.attempts + 1,
                error,
            )
        else:
            summary.failed += 1
            log.info("message %d failed (attempt %d): %s", c.id, c.attempts + 1, error)


def _ended(summary: Summary, c: outbox.Claimed) -> None:
    """A message given up on its channel: counted as handed on when it had a channel left
    (outbox.die handed it on, or found the prompt no longer needed), else as dead."""
    if c.fallback:
        summary.handed_on += 1
    else:
        summary.dead += 1
