"""The coordinator's choices after a client did not come: remind through a peer educator, or
book again. (Closing it as unreachable is the referral's ordinary `fail` action.)

Thin routes over usecases/referrals/no_show.py; the panel on the referral's page is
`_no_show.html`, fed by web/cases.py; a refusal shows on that page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals.infra.db import transaction
from referrals.locale.dates import NotADay, parse_day
from referrals.models.errors import Conflict, DomainError
from referrals.usecases.referrals.no_show import Rebooking, rebook, remind_through_peer
from referrals.web.cases import show_referral
from referrals.web.staff import REFUSALS, Code, Me

router = APIRouter(include_in_schema=False)


class RemindForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: int = Field(ge=1)


@router.post("/referrals/{code}/no-show/rebook")
async def no_show_rebook(code: Code, request: Request, me: Me) -> Response:
    form = await me.form(request)
    try:
        on = parse_day(form.get("on", "")).isoformat()
        booking = Rebooking.model_validate({"on": on, "version": form.get("version") or None})
        with transaction(me.rt.engine) as s:
            rebook(s, code=code, booking=booking, by=me.user, ctx=me.rt.ctx, now=me.now)
    except REFUSALS:
        raise
    except (NotADay, ValidationError, DomainError) as exc:
        status = 409 if isinstance(exc, DomainError) and exc.key == "conflict" else 422
        return show_referral(me, code, status, me.why(exc))
    return RedirectResponse(f"/referrals/{code}", 303)


@router.post("/referrals/{code}/no-show/remind")
async def no_show_remind(code: Code, request: Request, me: Me) -> Response:
    form = await me.form(request)
    office = me.rt.province.province.office
    try:
        data = RemindForm.model_validate({"group": form.get("group", "")})
        with transaction(me.rt.engine) as s:
            remind_through_peer(
                s,
                code=code,
                group_id=data.group,
                by=me.user,
                ctx=me.rt.ctx,
                now=me.now,
                office_phone=office.phone if office else "",
            )
    except REFUSALS:
        raise
    except (ValidationError, DomainError) as exc:
        return show_referral(me, code, 409 if isinstance(exc, Conflict) else 422, me.why(exc))
    return RedirectResponse(f"/referrals/{code}", 303)
