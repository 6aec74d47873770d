"""Coordinators' and managers' pages about referrals: my cases, a referral's timeline, its
actions and rerouting.

Thin routes: the rules live in the use cases (advancing, rerouting) and who may see what in
models/policy.py. Another district's referral answers 404, as if absent.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals.config.province import Hours
from referrals.infra.db import transaction
from referrals.locale.dates import show_day
from referrals.models.errors import DomainError
from referrals.models.lifecycle import REROUTABLE, Action, Reason
from referrals.models.people import Role
from referrals.models.policy import acts_in_area, district_scope
from referrals.queries.reading import Reader, list_referrals
from referrals.queries.reading import referral_for as referral_view
from referrals.queries.views import (
    escalation_ladders,
    partners_serving,
    pathways,
    places_of,
)
from referrals.usecases.referrals.advancing import advance, get_referral, referral_for
from referrals.usecases.referrals.extending import Waiting, waiting_extensions
from referrals.usecases.referrals.no_show import peer_groups, waiting_after_no_show
from referrals.usecases.referrals.rerouting import reroute
from referrals.usecases.referrals.slips import printable
from referrals.web.staff import KEY, REFUSALS, Code, Me, Staff

router = APIRouter(include_in_schema=False)
ACCESS = frozenset({"pii.viewed", "pii.listed", "intake.viewed", "intake.listed"})
PAGE_ROWS = 300  # a page lists the 300 most pressing; an office's open caseload fits


def _referral_or_404(me: Staff, read: Reader, code: str) -> dict[str, Any]:
    return referral_view(
        read, me.user, code=code, tz=me.rt.settings.tz, now=me.now, calendar=me.rt.ctx.calendar
    )


@router.get("/cases")
def cases(me: Me, all: bool = False) -> Response:
    """Open referrals, next deadline first; a coordinator's own unless `all` (the district's)."""
    mine = me.user.role == Role.coordinator.value and not all
    with me.reader() as read:
        rows = list_referrals(
            read,
            tz=me.rt.settings.tz,
            now=me.now,
            district=district_scope(me.user),
            coordinator=me.user.username if mine else None,
            open_only=True,
            by_due=True,
            limit=PAGE_ROWS,
            calendar=me.rt.ctx.calendar,
        )
    return me.page("cases.html", rows=rows, mine=mine, more=len(rows) == PAGE_ROWS)


def show_referral(
    me: Staff,
    code: str,
    status: int = 200,
    error: str | None = None,
    then: list[str] | None = None,
) -> Response:
    with me.reader() as read:
        found = _referral_or_404(me, read, code)
        names = {p["key"]: p["name" if me.lang == "vi" else "name_en"] for p in pathways(read)}
        others = [
            p
            for p in partners_serving(read, district=found["district"])
            if p["pathway"] == found["pathway"] and p["slug"] != found["partner"]
        ]
        actors = me.actors(read, {e["actor"] for e in found["events"]})
        ladders = escalation_ladders(
            read, pathway=found["pathway"], version=found["pathway_version"]
        )
        places = [
            p | {"hours": [Hours.model_validate(h).describe(me.lang) for h in p["hours"]]}
            for p in places_of(read, partner=found["partner"], pathway=found["pathway"])
        ]
    _timeline(found["events"], ladders)
    # Who opened the client's details is kept apart, folded under the timeline: a partner's
    # every visit to its page is one, and they buried the referral's own events.
    views = [e for e in found["events"] if e["kind"] in ACCESS]
    found["events"] = [e for e in found["events"] if e["kind"] not in ACCESS]
    with transaction(me.rt.engine) as s:  # waiting after a no-show: the coordinator's choices
        referral = get_referral(s, code)
        no_show = (
            {"groups": peer_groups(s, referral)} if waiting_after_no_show(s, referral) else None
        )
        slip = printable(s, referral)
    return me.page(
        "referral.html",
        status,
        no_show=no_show,
        slip=slip,
        views=views,
        then=[(key, names[key]) for key in then or [] if key in names],
        r=found,
        actors=actors,
        error=error,
        reasons=list(Reason),
        may_act=acts_in_area(me.user, found["district"]),
        reroutable=found["status"] in {s.value for s in REROUTABLE},
        others=others,
        places=places,
        extensions=_extensions(me, code),  # more time asked (gia hạn)
    )


def _extensions(me: Staff, code: str) -> list[Waiting]:
    """The requests for more time waiting on referral `code` (their reasons for whoever may
    decide, the viewing recorded)."""
    with transaction(me.rt.engine) as s:
        return waiting_extensions(s, ctx=me.rt.ctx, code=code, by=me.user, now=me.now)


def _timeline(events: list[dict[str, Any]], ladders: dict[str, list[str]]) -> None:
    """What the timeline says beyond an event's kind, in words rather than keys: whom an
    escalation level told (`told`), the day a partner gave with its answer (`on_day`)."""
    for e in events:
        data = e["data"] or {}
        if e["kind"].startswith("referral.") and data.get("from") == "on-hold":
            e["kind"] = "referral.resumed"  # back to where it was, not "the partner accepted"
        rungs = ladders.get(data.get("step") or "", [])
        level = data["level"] if isinstance(data.get("level"), int) else 0
        e["told"] = (
            rungs[level - 1] if e["kind"] == "step.escalated" and 0 < level <= len(rungs) else None
        )
        on = data.get("on") if e["kind"] == "link.answered" else None
        e["on_day"] = show_day(dt.date.fromisoformat(on)) if isinstance(on, str) else ""


@router.get("/referrals/{code}")
def referral_page(code: Code, me: Me, then: str = "") -> Response:
    """`then`: the other services a peer group's introduction asked for (after its launch), each
    offered as a launch for the same client; unknown keys are dropped."""
    return show_referral(me, code, then=[k for k in then.split(",") if k][:10])


class ActionForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    step: str | None = Field(default=None, pattern=KEY)
    reason: Reason | None = None
    version: int = Field(ge=1)


@router.post("/referrals/{code}/actions")
async def referral_action(code: Code, request: Request, me: Me) -> Response:
    form = await me.form(request)
    try:
        data = ActionForm.model_validate(form)
        with transaction(me.rt.engine) as s:
            advance(
                s,
                code=code,
                action=data.action,
                by=me.user,
                ctx=me.rt.ctx,
                now=me.now,
                step_key=data.step,
                reason=data.reason.value if data.reason else None,
                expected_version=data.version,
            )
    except REFUSALS:
        raise
    except (ValidationError, DomainError) as exc:
        return show_referral(me, code, 409 if _is_conflict(exc) else 422, me.why(exc))
    return RedirectResponse(f"/referrals/{code}", 303)


def _is_conflict(exc: Exception) -> bool:
    return isinstance(exc, DomainError) and exc.key == "conflict"


@router.post("/referrals/{code}/reroute")
async def referral_reroute(code: Code, request: Request, me: Me) -> Response:
    form = await me.form(request)
    with transaction(me.rt.engine) as s:
        referral_for(s, me.user, code, act=True)
    partner = form.get("partner", "")
    if not re.fullmatch(KEY, partner):
        return show_referral(me, code, 422, me.say(DomainError("", key="unknown_partner")))
    try:
        with transaction(me.rt.engine) as s:
            new = reroute(
                s, code=code, partner=partner, coordinator=me.user, ctx=me.rt.ctx, now=me.now
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return show_referral(me, code, 422, me.say(exc))
    return RedirectResponse(f"/referrals/{new}", 303)
