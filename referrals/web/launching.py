"""The launch form: a referral for a client, to a partner offering the service in their area.

A thin route over usecases/referrals/launching.py; every rule of a launch is there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals.infra.db import transaction
from referrals.models.codes import new_code
from referrals.models.errors import DomainError
from referrals.models.policy import district_scope
from referrals.queries.views import areas, list_clients, partners_serving, pathways
from referrals.usecases.referrals.launching import LaunchRequest, launch_one
from referrals.web.staff import KEY, REFUSALS, Me, Staff

router = APIRouter(include_in_schema=False)


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
        return _launch_page(me, 422, form, me.why(exc))
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
