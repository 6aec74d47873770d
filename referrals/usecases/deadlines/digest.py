"""The managers' morning digest: one e-mail per manager, through the outbox, once a day.

Figures are for the manager's district (every district for a manager without one) and carry
codes, partner slugs and step keys only. The outbox key names the local date, so running the
digest twice on a day queues it once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlmodel import Session, col

from referrals.config.province import Digest
from referrals.infra.context import Context
from referrals.models.directory import Organization
from referrals.models.lifecycle import WORKING, MessageStatus, ReferralStatus, StepStatus
from referrals.models.workflow import Notification, Referral, Step
from referrals.notifiers import messages

_Query = TypeVar("_Query", bound=Select[Any])


def queue_digests(
    session: Session, *, ctx: Context, now: dt.datetime, config: Digest
) -> dict[str, int]:
    """Queue today's digest for every manager with an e-mail; returns counts."""
    today = now.astimezone(ctx.tz).date()
    day_start = dt.datetime.combine(today, dt.time(), tzinfo=ctx.tz)
    yesterday = day_start - dt.timedelta(days=1)
    counts = {"queued": 0, "already": 0, "nothing_to_say": 0}
    for manager in messages.digest_readers(session):
        if messages.queued_digest(session, today, manager):
            counts["already"] += 1
            continue
        context = _figures(session, ctx, now, yesterday, day_start, manager.area_key, config)
        context["date"] = today.isoformat()
        quiet = not (context["overdue_total"] or context["completed"] or context["dead"])
        if quiet and not config.when_empty:
            counts["nothing_to_say"] += 1
            continue
        counts["queued"] += messages.digest(
            session, manager=manager, day=today, context=context, now=now
        )
    session.flush()
    return counts


def _figures(
    session: Session,
    ctx: Context,
    now: dt.datetime,
    yesterday: dt.datetime,
    today: dt.datetime,
    area: str | None,
    config: Digest,
) -> dict[str, Any]:
    def scoped(query: _Query) -> _Query:
        return query.where(col(Referral.area_key) == area) if area else query

    late = scoped(
        select(col(Referral.code), col(Organization.slug), col(Step.key), col(Step.due_at))
        .join(Step, col(Step.referral_id) == col(Referral.id))
        .join(Organization, col(Organization.id) == col(Referral.organization_id))
        .where(
            col(Step.status) == StepStatus.active.value,
            col(Referral.status).in_([s.value for s in WORKING]),
            col(Step.due_at) < now,
        )
    )
    total = session.scalar(select(func.count()).select_from(late.subquery())) or 0
    became = session.scalar(
        select(func.count()).select_from(
            late.where(col(Step.due_at) >= now - dt.timedelta(days=1)).subquery()
        )
    )
    most_late = session.execute(
        late.order_by(col(Step.due_at), col(Referral.id)).limit(config.most_late)
    ).all()
    completed = session.scalar(
        scoped(
            select(func.count())
            .select_from(Referral)
            .where(
                col(Referral.status) == ReferralStatus.completed.value,
                col(Referral.closed_at) >= yesterday,
                col(Referral.closed_at) < today,
            )
        )
    )
    dead = session.scalar(
        scoped(
            select(func.count())
            .select_from(Notification)
            .join(Referral, col(Referral.id) == col(Notification.referral_id))
            .where(col(Notification.status) == MessageStatus.dead.value)
        )
    )
    return {
        "overdue_total": total,
        "became_overdue": became or 0,
        "completed": completed or 0,
        "dead": dead or 0,
        "overdue": [
            {
                "code": code,
                "partner": partner,
                "step": step,
                "days_late": ctx.calendar.working_days_between(due, now),
            }
            for code, partner, step, due in most_late
        ],
    }
