"""Coordinators' pages: my cases, clients (PII on request, audited), launch, a referral's timeline.

Thin routes: the rules live in models/ (launching, advancing, rerouting, clients) and who may
see what in models/policy.py. Another district's client or referral answers 404, as if absent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals.config.province import Hours
from referrals.infra.db import transaction
from referrals.models.codes import new_code
from referrals.models.errors import DomainError, NotFound
from referrals.models.lifecycle import REROUTABLE, Action, Reason
from referrals.models.people import ConsentMethod, Role
from referrals.models.policy import Forbidden, acts_in_area, district_scope
from referrals.queries.reading import Reader, list_referrals
from referrals.queries.reading import referral_for as referral_view
from referrals.queries.views import (
    actor_names,
    areas,
    client_consents,
    client_events,
    list_clients,
    partners_serving,
    pathways,
    places_of,
)
from referrals.usecases.clients.clients import (
    REVEAL_PURPOSES,
    ClientIn,
    SamePerson,
    add_client,
    client_for,
    grant_consent,
    reveal_client,
    withdraw_consent,
)
from referrals.usecases.referrals.advancing import advance, referral_for
from referrals.usecases.referrals.launching import LaunchRequest, launch_one
from referrals.usecases.referrals.rerouting import reroute
from referrals.web.staff import Me, Staff

router = APIRouter(include_in_schema=False)
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,20}$")]
KEY = r"^[a-z0-9_-]{1,60}$"
PAGE_ROWS = 300  # a page lists the 300 most pressing; an office's open caseload fits


# The policy's refusals pass through the pages' own error handling to web/errors.py (404/403).
REFUSALS = (NotFound, Forbidden)


def _client_or_404(me: Staff, code: str) -> Any:
    with transaction(me.rt.engine) as s:
        return client_for(s, me.user, code, act=False)


def _referral_or_404(me: Staff, read: Reader, code: str) -> dict[str, Any]:
    return referral_view(read, me.user, code=code, tz=me.rt.settings.tz, now=me.now)


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


@router.get("/clients")
def clients(me: Me) -> Response:
    with me.reader() as read:
        rows = list_clients(read, district=district_scope(me.user))
        known = areas(read)
    return me.page("clients.html", rows=rows, areas=known)


@router.post("/clients")
async def client_new(request: Request, me: Me) -> Response:
    form = await me.form(request)
    form.setdefault("district", me.user.area_key or "")
    try:
        data = ClientIn.model_validate(form)
        with transaction(me.rt.engine) as s:
            client = add_client(s, data=data, ctx=me.rt.ctx, created_by=me.user, now=me.now)
            code = client.code
    except REFUSALS:
        raise
    except (ValidationError, DomainError) as exc:
        with me.reader() as read:
            rows, known = list_clients(read, district=district_scope(me.user)), areas(read)
        same = exc.params.get("clients", "").split(", ") if isinstance(exc, SamePerson) else None
        status = 409 if isinstance(exc, SamePerson) else 422
        return me.page(
            "clients.html",
            status,
            rows=rows,
            areas=known,
            error=_why(me, exc),
            form=form,
            same_person=[c for c in same if c] if same is not None else None,
        )
    return RedirectResponse(f"/clients/{code}", 303)


def _why(me: Staff, exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return me.say(exc)
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = me.w.get(f"field_{err['loc'][0]}", str(err["loc"][0])) if err["loc"] else ""
        return f"{field}: {str(err['msg']).removeprefix('Value error, ')}"
    return str(exc)


def _client_page(me: Staff, code: str, status: int = 200, **extra: Any) -> Response:
    client = _client_or_404(me, code)
    with me.reader() as read:
        referrals = list_referrals(read, tz=me.rt.settings.tz, now=me.now, client=code, limit=0)
        consents = client_consents(read, code=code)
        history = client_events(read, code=code)
        offered = partners_serving(read, district=client.area_key)
        paths = pathways(read)
        actors = actor_names(read, {e["actor"] for e in history})
        places = {a["key"]: a for a in areas(read)}
    return me.page(
        "client.html",
        status,
        client=client,
        referrals=referrals,
        consents=consents,
        history=history,
        offered=offered,
        pathways=paths,
        purposes=REVEAL_PURPOSES,
        actors=actors,
        district=places.get(client.area_key, {}).get("name", client.area_key),
        may_act=acts_in_area(me.user, client.area_key),
        **extra,
    )


@router.get("/clients/{code}")
def client_page(code: Code, me: Me) -> Response:
    return _client_page(me, code)


@router.post("/clients/{code}/reveal")
async def client_reveal(code: Code, request: Request, me: Me) -> Response:
    """The client's details, shown once on this response (never cached) and audited."""
    form = await me.form(request)
    try:
        with transaction(me.rt.engine) as s:
            shown = reveal_client(
                s,
                code=code,
                user=me.user,
                purpose=form.get("purpose", ""),
                ctx=me.rt.ctx,
                now=me.now,
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return _client_page(me, code, 422, error=me.say(exc))
    response = _client_page(me, code, shown=shown)
    response.headers["Cache-Control"] = "no-store"
    return response


class ConsentForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: str = Field(pattern=KEY)
    purpose: str = Field(pattern=KEY)
    method: ConsentMethod = ConsentMethod.written
    withdraw: bool = False


@router.post("/clients/{code}/consents")
async def client_consent(code: Code, request: Request, me: Me) -> Response:
    form = await me.form(request)
    try:
        data = ConsentForm.model_validate(form)
        with transaction(me.rt.engine) as s:
            if data.withdraw:
                withdraw_consent(
                    s,
                    client_code=code,
                    partner=data.partner,
                    purpose=data.purpose,
                    by=me.user,
                    now=me.now,
                    ctx=me.rt.ctx,
                )
            else:
                grant_consent(
                    s,
                    client_code=code,
                    partner=data.partner,
                    purpose=data.purpose,
                    method=data.method,
                    by=me.user,
                    now=me.now,
                )
    except REFUSALS:
        raise
    except (ValidationError, DomainError) as exc:
        return _client_page(me, code, 422, error=_why(me, exc))
    return RedirectResponse(f"/clients/{code}", 303)


class LaunchForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(pattern=r"^[A-Za-z0-9-]{1,20}$")
    pathway: str = Field(pattern=KEY)
    partner: str = Field(pattern=KEY)
    urgent: bool = False


def _launch_page(
    me: Staff, status: int = 200, chosen: dict[str, str] | None = None, error: str | None = None
) -> Response:
    scope = district_scope(me.user)
    with me.reader() as read:
        people = list_clients(read, district=scope)
        offered: list[dict[str, Any]] = []
        for area in [scope] if scope else [a["key"] for a in areas(read)]:
            offered += [{**p, "district": area} for p in partners_serving(read, district=area)]
        paths = pathways(read)
    return me.page(
        "launch.html",
        status,
        clients=people,
        offered=offered,
        pathways=paths,
        chosen=chosen or {},
        error=error,
    )


@router.get("/launch")
def launch_form(me: Me, client: str | None = None, pathway: str | None = None) -> Response:
    chosen = {k: v for k, v in (("client", client), ("pathway", pathway)) if v}
    return _launch_page(me, chosen=chosen)


@router.post("/launch")
async def launch(request: Request, me: Me) -> Response:
    form = await me.form(request)
    try:
        data = LaunchForm.model_validate(form)
    except ValidationError as exc:
        return _launch_page(me, 422, form, _why(me, exc))
    code = new_code("R")
    request_ = LaunchRequest(
        client_code=data.client, pathway=data.pathway, partner=data.partner, urgent=data.urgent
    )
    try:
        with transaction(me.rt.engine) as s:
            launch_one(
                s, code=code, request=request_, coordinator=me.user, ctx=me.rt.ctx, now=me.now
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return _launch_page(me, 422, form, me.say(exc))
    return RedirectResponse(f"/referrals/{code}", 303)


def _referral_page(me: Staff, code: str, status: int = 200, error: str | None = None) -> Response:
    with me.reader() as read:
        found = _referral_or_404(me, read, code)
        others = [
            p
            for p in partners_serving(read, district=found["district"])
            if p["pathway"] == found["pathway"] and p["slug"] != found["partner"]
        ]
        actors = actor_names(read, {e["actor"] for e in found["events"]})
        places = [
            p | {"hours": [Hours.model_validate(h).describe(me.lang) for h in p["hours"]]}
            for p in places_of(read, partner=found["partner"], pathway=found["pathway"])
        ]
    return me.page(
        "referral.html",
        status,
        r=found,
        actors=actors,
        error=error,
        reasons=list(Reason),
        may_act=acts_in_area(me.user, found["district"]),
        reroutable=found["status"] in {s.value for s in REROUTABLE},
        others=others,
        places=places,
    )


@router.get("/referrals/{code}")
def referral_page(code: Code, me: Me) -> Response:
    return _referral_page(me, code)


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
        return _referral_page(me, code, 409 if _is_conflict(exc) else 422, _why(me, exc))
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
        return _referral_page(me, code, 422, me.say(DomainError("", key="unknown_partner")))
    try:
        with transaction(me.rt.engine) as s:
            new = reroute(
                s, code=code, partner=partner, coordinator=me.user, ctx=me.rt.ctx, now=me.now
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return _referral_page(me, code, 422, me.say(exc))
    return RedirectResponse(f"/referrals/{new}", 303)
