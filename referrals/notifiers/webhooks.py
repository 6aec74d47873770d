"""Webhooks out: each event a subscription wants becomes an outbox row, sent signed.

Fan-out reads the events after each subscription's cursor and writes one `webhook` message per
(subscription, event), idempotently, in the same transaction as the cursor's move. The send
pass claims them like any message (leases, retries with backoff, dead after the last attempt)
and POSTs the event as JSON with `X-Referrals-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the subscription's secret>`, so the receiver can check it came from us and
is fresh. The body carries codes and kinds only: never a sealed note, never a client's detail.
Apprise is not used here: a webhook is a machine's signed JSON, not a person's message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from referrals.config.province import Delivery
from referrals.infra.crypto import Vault
from referrals.infra.db import transaction
from referrals.models.subscriptions import Webhook, wants
from referrals.models.workflow import Event, Referral, Step
from referrals.notifiers import messages, outbox

log = logging.getLogger("referrals.webhooks")
CHANNEL = "webhook"
FAN_OUT = 1000  # events per subscription per pass
TIMEOUT = 10.0


COUNTS = ("queued", "sent", "failed", "dead")  # what a pass says of the webhooks


def fan_out(session: Session, *, now: dt.datetime) -> int:
    """Queue the new events each active subscription wants; returns how many were queued."""
    rows: list[dict[str, Any]] = []
    hooks = session.scalars(
        select(Webhook).where(col(Webhook.active)).order_by(col(Webhook.id)).with_for_update()
    ).all()
    for hook in hooks:
        assert hook.id is not None  # a loaded row has its id
        events = session.scalars(
            select(Event)
            .where(col(Event.id) > hook.after_event_id)
            .order_by(col(Event.id))
            .limit(FAN_OUT)
        ).all()
        for e in events:
            assert e.id is not None  # a loaded row has its id
            if wants(hook, e.kind) and not _about_webhooks(e):
                rows.append(
                    messages.webhook(
                        hook_id=hook.id, event_id=e.id, referral_id=e.referral_id, now=now
                    )
                )
        if events:
            last = events[-1].id
            assert last is not None  # a loaded row has its id
            hook.after_event_id = last
    return messages.queue(session, rows)


def _about_webhooks(e: Event) -> bool:
    """A dead webhook message is an event too; sending it to webhooks could never end."""
    return e.kind == outbox.ALERT and e.data.get("channel") == CHANNEL


def body_of(session: Session, event_id: int) -> dict[str, Any]:
    e = session.get(Event, event_id)
    if e is None:
        raise LookupError(f"event {event_id} is gone")
    referral = session.get(Referral, e.referral_id) if e.referral_id else None
    step = session.get(Step, e.step_id) if e.step_id else None
    return {
        "id": e.id,
        "kind": e.kind,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "referral": referral.code if referral else None,
        "status": referral.status if referral else None,
        "step": step.key if step else None,
        "data": {k: v for k, v in e.data.items() if not k.endswith("_enc")},
    }


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def deliver_webhooks(
    engine: Engine, *, vault: Vault, delivery: Delivery, now: dt.datetime, limit: int = 200
) -> dict[str, int]:
    """Fan out, then send what is due: {queued, sent, failed, dead}."""
    counts = dict.fromkeys(COUNTS, 0)
    with transaction(engine) as s:
        counts["queued"] = fan_out(s, now=now)
    with transaction(engine) as s:
        claimed = outbox.claim(
            s, kinds=[CHANNEL], now=now, limit=limit, lease_seconds=delivery.lease_seconds
        )
        hooks = {h.id: h for h in s.scalars(select(Webhook))}
        jobs = []
        for c in claimed:
            hook = hooks.get(c.context["webhook"])
            body = json.dumps(body_of(s, c.context["event"]), ensure_ascii=False).encode()
            jobs.append((c, hook, body))
    down: set[int] = set()  # receivers that failed in this pass: not tried again until later
    with httpx.Client(timeout=TIMEOUT) as http:
        for c, hook, body in jobs:
            if hook is not None and hook.id in down:
                with transaction(engine) as s:  # not an attempt: back in the queue
                    outbox.defer(
                        s, c, until=now + dt.timedelta(seconds=delivery.first_retry_seconds)
                    )
                continue
            error = _post(http, hook, body, c.id, vault, now) if hook else "webhook removed"
            if error is not None and hook is not None:
                assert hook.id is not None  # a loaded row has its id
                down.add(hook.id)
            with transaction(engine) as s:
                if error is None:
                    counts["sent"] += outbox.mark_sent(
                        s, [outbox.Sent(c, None, body.decode())], now=now
                    )
                    continue
                permanent = hook is None or not hook.active
                status = outbox.mark_failed(
                    s, c, now=now, error=error, delivery=delivery, permanent=permanent
                )
                if status is not None:
                    counts[status.value] += 1
    return counts


def _post(
    http: httpx.Client, hook: Webhook, body: bytes, message_id: int, vault: Vault, now: dt.datetime
) -> str | None:
    secret = vault.decrypt(hook.secret_enc, "webhook.secret") or ""
    headers = {
        "Content-Type": "application/json",
        "X-Referrals-Signature": signature(secret, int(now.timestamp()), body),
        "X-Referrals-Delivery": str(message_id),
    }
    try:
        answer = http.post(hook.url, content=body, headers=headers)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"[:300]
    if answer.is_success:
        return None
    return f"HTTP {answer.status_code}"
