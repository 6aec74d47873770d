"""The rows of a checked launch batch: referrals, their steps (the first one active, with its
deadline), their events and the outbox rows for each partner's first contacts.

Every table gets one set-based INSERT for the whole batch, and the first steps' ids are read back
one query per chunk: bulk import launches thousands of referrals at once, never row by row.
`launching.py` checks the batch and calls `write_launches`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.config.province import DueRule
from referrals.infra.context import Context
from referrals.infra.db import chunks, insert_many
from referrals.models.directory import Organization, Service
from referrals.models.lifecycle import ReferralStatus, StepStatus, referral_move, step_move
from referrals.models.people import Client, User, actor_name
from referrals.models.workflow import Event, PathwayVersion, Referral, Step
from referrals.notifiers import messages
from referrals.notifiers.messages import People

if TYPE_CHECKING:
    from referrals.usecases.referrals.launching import LaunchRequest

# A checked request: the request, its client, partner, service and pathway version, and when.
Plan = tuple["LaunchRequest", Client, Organization, Service, PathwayVersion, dt.datetime]


def write_launches(
    session: Session,
    plans: list[Plan],
    codes: Sequence[str],
    coordinator: User,
    people: People,
    ctx: Context,
) -> None:
    """Insert the batch (`plans`, under `codes`) in the caller's transaction."""
    if not plans:
        return
    status = referral_move("submit", ReferralStatus.draft)
    actor = actor_name(coordinator)
    referral_rows = _referral_rows(plans, codes, coordinator, status)
    ids = insert_many(session, Referral, referral_rows, key="code")

    step_rows, first_due = _step_rows(ids, plans, ctx)
    insert_many(session, Step, step_rows)
    first_step_ids = _first_step_ids(session, ids)

    events: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for ref_id, step_id, code, due, (req, _client, org, service, pathway, at) in zip(
        ids, first_step_ids, codes, first_due, plans, strict=True
    ):
        assert org.id is not None  # a loaded row has its id
        events += _events(ref_id, step_id, due, req, org, pathway, at, actor, status)
        outbox += messages.new_referral(
            referral_id=ref_id,
            code=code,
            contacts=people.partner(org.id)[0],
            service=service,
            step=pathway.definition["steps"][0],
            due=due,
            urgent=req.urgent,
            now=at,
        )
    insert_many(session, Event, events)
    messages.queue(session, outbox)


def _referral_rows(
    plans: list[Plan], codes: Sequence[str], coordinator: User, status: ReferralStatus
) -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "client_id": client.id,
            "pathway_key": pathway.key,
            "pathway_version": pathway.version,
            "organization_id": org.id,
            "service_id": service.id,
            "area_key": client.area_key,
            "coordinator_id": coordinator.id,
            "status": status.value,
            "priority": "urgent" if req.urgent else "routine",
            "launched_at": at,
            "version": 1,
        }
        for code, (req, client, org, service, pathway, at) in zip(codes, plans, strict=True)
    ]


def _step_rows(
    ids: list[int], plans: list[Plan], ctx: Context
) -> tuple[list[dict[str, Any]], list[dt.datetime]]:
    """Every step of every referral, the first one active; and the first steps' deadlines."""
    step_rows: list[dict[str, Any]] = []
    first_due: list[dt.datetime] = []
    for ref_id, (req, _c, _o, _s, pathway, at) in zip(ids, plans, strict=True):
        for seq, tpl in enumerate(pathway.definition["steps"]):
            rule = tpl["urgent_due"] if req.urgent and tpl.get("urgent_due") else tpl["due"]
            first = seq == 0
            due: dt.datetime | None = None
            if first:
                due = ctx.calendar.due(at, DueRule.model_validate(rule))
                first_due.append(due)
            step_rows.append(
                {
                    "referral_id": ref_id,
                    "seq": seq,
                    "key": tpl["key"],
                    "actor": tpl["actor"],
                    "status": (
                        step_move("activate", StepStatus.pending) if first else StepStatus.pending
                    ).value,
                    "due_rule": rule,
                    "activated_at": at if first else None,
                    "due_at": due,
                    "alert_seq": 0,
                    "next_alert_at": at if first else None,  # the next sweep schedules its ladder
                }
            )
    return step_rows, first_due


def _first_step_ids(session: Session, ids: list[int]) -> list[int]:
    """The ids of the referrals' first steps, in the order of `ids` (one query per chunk)."""
    first_steps: dict[int, int] = {}
    for part in chunks(ids):
        query = select(col(Step.referral_id), col(Step.id)).where(
            col(Step.seq) == 0, col(Step.referral_id).in_(part)
        )
        first_steps.update(session.execute(query).tuples().all())
    return [first_steps[i] for i in ids]


def _events(
    ref_id: int,
    step_id: int,
    due: dt.datetime,
    req: LaunchRequest,
    org: Organization,
    pathway: PathwayVersion,
    at: dt.datetime,
    actor: str,
    status: ReferralStatus,
) -> list[dict[str, Any]]:
    """A launched referral's events: requested, the manager's consent override if any, and its
    first step active."""
    events = [
        _event(
            ref_id,
            None,
            "referral.requested",
            at,
            actor,
            {
                "from": "draft",
                "to": status.value,
                "pathway": pathway.key,
                "version": pathway.version,
                "partner": org.slug,
            },
        )
    ]
    if req.consent_override:
        events.append(
            _event(
                ref_id,
                None,
                "consent.overridden",
                at,
                actor,
                {"reason": req.consent_override.value, "partner": org.slug},
            )
        )
    events.append(
        _event(
            ref_id,
            step_id,
            "step.active",
            at,
            actor,
            {"step": "acknowledge", "due_at": due.isoformat()},
        )
    )
    return events


def _event(
    referral_id: int,
    step_id: int | None,
    kind: str,
    at: dt.datetime,
    actor: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "referral_id": referral_id,
        "client_id": None,
        "step_id": step_id,
        "kind": kind,
        "at": at,
        "actor": actor,
        "data": data,
    }
