"""The deadline sweep's data-protection pass (called by usecases/deadlines/sweeping.py): late
requests and breach clocks escalated to managers once each, then retention.

Once: each alert first sets its mark on the row with a conditional UPDATE (`... WHERE mark IS
NULL`) in the transaction that queues its messages, so two sweeps at once, or one run twice,
queue it once (PostgreSQL re-checks the condition after the row lock; SQLite has one writer).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, or_, select, update
from sqlmodel import col

from referrals.config.privacy import DataProtection
from referrals.infra.context import Context
from referrals.infra.db import transaction
from referrals.models.people import Client
from referrals.models.privacy import Breach, PrivacyRequest
from referrals.models.workflow import Event
from referrals.notifiers.messages import who
from referrals.usecases.privacy import alerts
from referrals.usecases.privacy.breaches import due_breaches
from referrals.usecases.privacy.requests import mark_alerted
from referrals.usecases.privacy.retention import sweep_retention

COUNTS = (
    "privacy_alerts",
    "privacy_messages",
    "retention_noticed",
    "retention_erased",
    "retention_messages",
)


def configured() -> DataProtection:
    """The installation's `data_protection:` settings (province.yaml)."""
    from referrals.config import get_settings, load_province

    return load_province(get_settings().config_dir).province.data_protection


def sweep_privacy(
    engine: Engine, *, ctx: Context, now: dt.datetime, cfg: DataProtection | None = None
) -> dict[str, int]:
    """One pass at `now`; the counts join the sweep's summary."""
    cfg = cfg or configured()
    out = dict.fromkeys(COUNTS, 0)
    with transaction(engine) as s:
        late = s.execute(
            select(PrivacyRequest, col(Client.area_key))
            .join(Client, col(Client.id) == col(PrivacyRequest.client_id))
            .where(
                col(PrivacyRequest.closed_at).is_(None),
                or_(
                    (col(PrivacyRequest.acknowledged_at).is_(None))
                    & (col(PrivacyRequest.ack_due_at) <= now)
                    & (col(PrivacyRequest.ack_alerted_at).is_(None)),
                    (col(PrivacyRequest.due_at) <= now)
                    & (col(PrivacyRequest.due_alerted_at).is_(None)),
                ),
            )
            .order_by(col(PrivacyRequest.id))
        ).tuples()
        for request, area in list(late):
            assert request.id is not None
            which = []
            if request.acknowledged_at is None and request.ack_due_at <= now:
                which.append(("ack", request.ack_due_at))
            if request.due_at <= now:
                which.append(("due", request.due_at))
            for kind, due in which:
                if (kind == "ack" and request.ack_alerted_at) or (
                    kind == "due" and request.due_alerted_at
                ):
                    continue
                if not mark_alerted(s, request.id, kind, now):
                    continue  # another pass told them
                told, skipped = alerts.managers(s, area)
                out["privacy_alerts"] += 1
                out["privacy_messages"] += alerts.request_late(
                    s,
                    code=request.code,
                    kind=request.kind,
                    which=kind,
                    due_at=due,
                    days_late=ctx.calendar.working_days_between(due, now),
                    recipients=told,
                    now=now,
                )
                s.add(
                    Event(
                        client_id=request.client_id,
                        kind="privacy.request.escalated",
                        at=now,
                        actor="system:sweep",
                        data={
                            "request": request.code,
                            "which": kind,
                            "due_at": due.isoformat(),
                            "to": [who(u) for u in told],
                            **({"skipped": skipped} if skipped else {}),
                        },
                    )
                )
        for breach in due_breaches(s, now, cfg):
            over = now >= breach.notify_due_at
            mark = "overdue_alerted_at" if over else "warned_at"
            if not over and breach.warned_at is not None:
                continue
            done = s.execute(
                update(Breach)
                .where(col(Breach.id) == breach.id, col(getattr(Breach, mark)).is_(None))
                .values({mark: now})
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                continue
            told, skipped = alerts.managers(s)
            out["privacy_alerts"] += 1
            out["privacy_messages"] += alerts.breach_clock(
                s,
                code=breach.code,
                due_at=breach.notify_due_at,
                over=over,
                hours_late=int((now - breach.notify_due_at).total_seconds() // 3600),
                recipients=told,
                now=now,
            )
            s.add(
                Event(
                    kind="privacy.breach.overdue" if over else "privacy.breach.warned",
                    at=now,
                    actor="system:sweep",
                    data={
                        "breach": breach.code,
                        "due_at": breach.notify_due_at.isoformat(),
                        "to": [who(u) for u in told],
                        **({"skipped": skipped} if skipped else {}),
                    },
                )
            )
    out.update(sweep_retention(engine, cfg=cfg, now=now))
    return out
