"""Coordinators' pages about clients: the list, a new client, a client's page (details on
request, audited), consents.

Thin routes over usecases/clients; who may see what is models/policy.py. Another district's
client answers 404, as if absent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals import locale
from referrals.infra.db import transaction
from referrals.models.directory import Area
from referrals.models.errors import DomainError
from referrals.models.people import ConsentMethod
from referrals.models.policy import acts_in_area, district_scope
from referrals.queries.reading import list_referrals
from referrals.queries.views import (
    areas,
    client_consents,
    client_events,
    list_clients,
    partner_names,
    partners_serving,
    pathways,
)
from referrals.usecases.clients.clients import (
    REVEAL_PURPOSES,
    ClientIn,
    SamePerson,
    add_client,
    client_for,
    grant_consent,
    move_client,
    reveal_client,
    successors_in_force,
    withdraw_consent,
)
from referrals.usecases.clients.finding import LIMIT, find_clients
from referrals.web.staff import KEY, REFUSALS, Code, Me, Staff

router = APIRouter(include_in_schema=False)


def _client_or_404(me: Staff, code: str) -> Any:
    with transaction(me.rt.engine) as s:
        return client_for(s, me.user, code, act=False)


@router.get("/search")
def search_page(me: Me) -> Response:
    return me.page("search.html", q="", found=None, limit=LIMIT)


@router.post("/search")
async def search(request: Request, me: Me) -> Response:
    """Clients matching what was typed in the header's box. A POST, so the words (often a
    name) stay out of the address bar, the history and any proxy's log."""
    form = await me.form(request)
    q = form.get("q", "")
    try:
        with transaction(me.rt.engine) as s:
            found = find_clients(s, by=me.user, text=q, ctx=me.rt.ctx, now=me.now, via="web")
    except (ValidationError, DomainError) as exc:
        return me.page("search.html", 422, q=q, found=None, limit=LIMIT, error=me.why(exc))
    # Who may refer whom is the policy's (models/policy.py), not the template's.
    may_refer = {f.code for f in found if acts_in_area(me.user, f.district)}
    response = me.page("search.html", q=q, found=found, limit=LIMIT, may_refer=may_refer)
    response.headers["Cache-Control"] = "no-store"  # names: never kept by the browser
    return response


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
            error=me.why(exc),
            form=form,
            same_person=[c for c in same if c] if same is not None else None,
        )
    return RedirectResponse(f"/clients/{code}", 303)


def _moves(me: Staff, area_key: str) -> tuple[Any, list[Any]]:
    """The client's area if it is no longer in force, and the units in force today `me` may
    record them under: those that took over its territory (usecases/clients/clients.py)."""
    today = me.now.astimezone(me.rt.settings.tz).date()
    with transaction(me.rt.engine) as s:
        area = s.get(Area, area_key)
        if area is None or area.in_force(today):
            return None, []
        keys = [k for k in successors_in_force(s, area_key, today) if acts_in_area(me.user, k)]
        return area, [s.get(Area, k) for k in keys]


def _client_page(me: Staff, code: str, status: int = 200, **extra: Any) -> Response:
    client = _client_or_404(me, code)
    ended, move_to = _moves(me, client.area_key)
    with me.reader() as read:
        referrals = list_referrals(read, tz=me.rt.settings.tz, now=me.now, client=code, limit=0)
        consents = client_consents(read, code=code)
        history = client_events(read, code=code)
        offered = partners_serving(read, district=client.area_key)
        paths = pathways(read)
        actors = me.actors(read, {e["actor"] for e in history})
        partners = partner_names(read)
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
        partners=partners,
        district=places.get(client.area_key, {}).get("name", client.area_key),
        may_act=acts_in_area(me.user, client.area_key),
        ended=locale.day(ended.valid_to, me.lang) if ended and ended.valid_to else None,
        move_to=move_to,
        **extra,
    )


@router.get("/clients/{code}")
def client_page(code: Code, me: Me) -> Response:
    return _client_page(me, code)


@router.post("/clients/{code}/move")
async def client_move(code: Code, request: Request, me: Me) -> Response:
    """Record the client under a unit in force today (after the 2025 reform)."""
    form = await me.form(request)
    district = form.get("district", "")
    try:
        with transaction(me.rt.engine) as s:
            move_client(
                s, code=code, district=district, by=me.user, now=me.now, tz=me.rt.settings.tz
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return _client_page(me, code, 422, error=me.say(exc))
    return RedirectResponse(f"/clients/{code}", 303)


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
        return _client_page(me, code, 422, error=me.why(exc))
    return RedirectResponse(f"/clients/{code}", 303)
