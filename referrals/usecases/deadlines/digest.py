"""The managers' morning digest: one e-mail per manager, through the outbox, once a day.

Figures are for the manager's district (every district for a manager without one). A late
referral is named as the manager reads it: its code, the partner's and the step's names in the
manager's language, its coordinator's name, and how late in its step's unit (hours on the steps
counted in hours, queries/lateness.py, as the pages and the escalation messages say it), never
its client. The outbox key names the local date, so running the digest twice on a day queues it
once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Row, Select, func, select
from sqlmodel import Session, col

from referrals.config.province import Digest
from referrals.infra.context import Context
from referrals.models.directory import Organization
from referrals.models.lifecycle import WORKING, MessageStatus, ReferralStatus, StepStatus
from referrals.models.people import User
from referrals.models.policy import area_scope
from referrals.models.workflow import Notification, PathwayVersion, Referral, Step
from referrals.notifiers import messages
from referrals.queries.lateness import counts_hours, how_late, step_of

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
        language = messages.language_of(manager)
        context = _figures(
            session, ctx, now, yesterday, day_start, manager.area_key, config, language
        )
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
    language: str,
) -> dict[str, Any]:
    def scoped(query: _Query) -> _Query:
        return query.where(col(Referral.area_key).in_(area_scope(area))) if area else query

    late = scoped(
        select(
            col(Referral.code),
            col(Organization.slug),
            col(Organization.name),
            col(Organization.name_en),
            col(Step.key),
            col(Step.due_at),
            col(Referral.pathway_key),
            col(Referral.pathway_version),
            col(Referral.priority),
            col(User.full_name),
        )
        .join(Step, col(Step.referral_id) == col(Referral.id))
        .join(Organization, col(Organization.id) == col(Referral.organization_id))
        .join(User, col(User.id) == col(Referral.coordinator_id))
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
        "overdue": _most_late(session, ctx, now, most_late, language),
    }


def _most_late(
    session: Session, ctx: Context, now: dt.datetime, rows: Sequence[Row[Any]], language: str
) -> list[dict[str, Any]]:
    """The most late referrals as the manager reads them: names in `language`, not keys (the
    keys stay for a digest queued before names were, and for searching the outbox), and on a
    step counted in hours `hours_late` (None elsewhere: the template says working days)."""
    known = _definitions(session, {(r.pathway_key, r.pathway_version) for r in rows})
    out = []
    for r in rows:
        definition = known.get((r.pathway_key, r.pathway_version))
        step = step_of(definition, r.key)
        hours = counts_hours(definition, r.key, r.priority == "urgent")
        out.append(
            {
                "code": r.code,
                "partner": r.slug,
                "partner_name": messages.in_language(language, r.name, r.name_en),
                "step": r.key,
                "step_name": messages.in_language(
                    language, step.get("name") or r.key, step.get("name_en") or r.key
                ),
                "coordinator_name": r.full_name,
                "days_late": ctx.calendar.working_days_between(r.due_at, now),
                "hours_late": how_late(r.due_at, now, hours=True).amount if hours else None,
            }
        )
    return out


def _definitions(
    session: Session, versions: set[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The pathway versions' definitions (their steps' names and deadlines) by (key, version)."""
    if not versions:
        return {}
    found = session.execute(
        select(
            col(PathwayVersion.key), col(PathwayVersion.version), col(PathwayVersion.definition)
        ).where(col(PathwayVersion.key).in_({key for key, _ in versions}))
    ).all()
    return {(k, v): d for k, v, d in found if (k, v) in versions}
