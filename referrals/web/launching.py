"""The launch form: one page from a client (or a new client's details) to a launched referral.

`GET /launch?client=CODE` is the form with the client fixed: the service, then only the partners
that offer it in the client's district (with how full they say they are), urgency, and, when no
consent of the client covers the chosen partner and service, the consent on the same form: how
it is given, who records it, and the text the coordinator reads to the client. `GET /launch`
without a client is the same form with the new client's details on top. A refusal comes back on
the same form, with what was typed kept and what to do (a link where there is somewhere to go).

A thin route over usecases/referrals/launching.py; every rule of a launch (and of registering a
client, and of recording a consent) is there, and the consent, the client and the referral are
written in one transaction: a refused launch leaves none of them.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals.infra.db import transaction
from referrals.locale import N_, Msg
from referrals.models.codes import new_code
from referrals.models.errors import Conflict, DomainError
from referrals.models.people import ConsentMethod
from referrals.usecases.clients.clients import ClientIn, SamePerson
from referrals.usecases.clients.intake import INTAKE_CODE, intake_for_launch, take_intake
from referrals.usecases.referrals.launch_form import (
    consent_given,
    launch_choices,
    register_and_launch,
)
from referrals.usecases.referrals.launching import LaunchRequest, launch_one
from referrals.web.staff import KEY, REFUSALS, Me, Staff

router = APIRouter(include_in_schema=False)

CODE = r"^[A-Za-z0-9-]{1,20}$"
CLIENT_FIELDS = ("name", "phone", "id_number", "district", "different_person")

# Refusals said here rather than with web/words.py's words, because this form is where to act on
# them: the consent is given on this very form, not on the client's page.
SAID_HERE: dict[str, Msg] = {
    "no_consent": N_(
        "Client %(client)s has not yet agreed to “%(pathway)s” with %(partner)s. Read them the "
        "text under “The client's consent” below and tick “The client agreed”."
    ),
    "consent_withdrawn": N_(
        "Client %(client)s withdrew consent to “%(pathway)s” with %(partner)s on %(day)s. Only if "
        "they agree again: read them the text below and tick “The client agreed”."
    ),
    "consent_method_missing": N_("Say how the client agreed: written or verbal."),
    "field_method": N_("How the client agreed"),
    "field_agreed": N_("The client agreed"),
    "field_urgent": N_("Urgent"),
    "intake_taken": N_(
        "The introduction %(intake)s was already taken by a coordinator: find the client with "
        "the search box."
    ),
}
# Where a refusal points to (`_next_steps`).
NEXT: dict[str, Msg] = {
    "page": N_("Open client %(client)s"),
    "refer": N_("Refer client %(client)s instead"),
    "open": N_("Open referral %(referral)s"),
}


class LaunchForm(BaseModel):
    """The form's launch fields (the new client's, if any, are `ClientIn`'s)."""

    model_config = ConfigDict(extra="forbid")

    client: str | None = Field(default=None, pattern=CODE)
    pathway: str = Field(pattern=KEY)
    partner: str = Field(pattern=KEY)
    urgent: bool = False
    agreed: bool = False
    method: ConsentMethod | None = None
    # A peer group's intake (usecases/clients/intake.py) this launch takes, from /intakes.
    intake: str | None = Field(default=None, pattern=INTAKE_CODE)


@router.get("/launch")
def launch_form(
    me: Me,
    client: Annotated[str | None, Query(pattern=CODE)] = None,
    pathway: Annotated[str | None, Query(pattern=KEY)] = None,
    partner: Annotated[str | None, Query(pattern=KEY)] = None,
    intake: Annotated[str | None, Query(pattern=INTAKE_CODE)] = None,
) -> Response:
    chosen = {k: v for k, v in (("pathway", pathway), ("partner", partner)) if v}
    if intake:
        return _from_intake(me, client, intake, chosen)
    return _launch_page(me, client, chosen=chosen)


@router.post("/launch")
async def launch(request: Request, me: Me) -> Response:
    form = await me.form(request)
    code = new_code("R")
    try:
        data = LaunchForm.model_validate({k: v for k, v in form.items() if k not in CLIENT_FIELDS})
        person = None if data.client else _new_client(me, form)
        consent = consent_given(data.agreed, data.method)
        # A new client's code is not known yet: register_and_launch puts it in.
        asked = LaunchRequest(
            client_code=data.client or "new",
            pathway=data.pathway,
            partner=data.partner,
            urgent=data.urgent,
        )
        acting: dict[str, Any] = {"coordinator": me.user, "ctx": me.rt.ctx, "now": me.now}
        with transaction(me.rt.engine) as s:
            taker = data.client
            if person is None:
                launch_one(s, code=code, request=asked, consent=consent, **acting)
            else:
                taker = register_and_launch(
                    s, code=code, client=person, request=asked, consent=consent, **acting
                )
            others: list[str] = []
            if data.intake and taker:  # the intake becomes this client's, in this transaction
                asked_for = take_intake(
                    s, code=data.intake, client_code=taker, by=me.user, now=me.now
                )
                others = [p for p in asked_for if p != data.pathway]
    except REFUSALS:
        raise
    except (ValidationError, DomainError) as exc:
        status = 409 if isinstance(exc, SamePerson | Conflict) else 422
        return _launch_page(me, form.get("client"), status, chosen=form, refusal=exc)
    # The introduction asked for more than this service: the referral's page offers the rest.
    then = f"?then={','.join(others)}" if others else ""
    return RedirectResponse(f"/referrals/{code}{then}", 303)


def _from_intake(me: Staff, client_code: str | None, code: str, chosen: dict[str, str]) -> Response:
    """The form filled in from a peer group's intake (web/intake.py's "Chuyển gửi"): for a new
    client its nickname, phone and area (read once, on record), and its first service; its code
    rides along in a hidden field, for the launch to take it."""
    try:
        with transaction(me.rt.engine) as s:
            got = intake_for_launch(
                s, by=me.user, ctx=me.rt.ctx, code=code, now=me.now, reveal=client_code is None
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return _launch_page(me, client_code, 409, chosen=chosen, refusal=exc)
    filled = {"intake": got.code, "pathway": got.services[0]}
    if client_code is None:
        filled |= {"name": got.nickname or "", "phone": got.phone or "", "district": got.area}
    return _launch_page(me, client_code, chosen=filled | chosen)


def _new_client(me: Staff, form: dict[str, str]) -> ClientIn:
    """The new client's details; a coordinator's client is of their own district."""
    fields = {k: form[k] for k in CLIENT_FIELDS if k in form}
    fields.setdefault("district", me.user.area_key or "")
    return ClientIn.model_validate(fields)


def _launch_page(
    me: Staff,
    client_code: str | None,
    status: int = 200,
    *,
    chosen: dict[str, str],
    refusal: Exception | None = None,
) -> Response:
    with transaction(me.rt.engine) as s:
        choices = launch_choices(
            s, by=me.user, client_code=client_code, now=me.now, tz=me.rt.settings.tz
        )
    return me.page(
        "launch.html",
        status,
        c=choices,
        client=choices.client,
        chosen=chosen,
        error=_said(me, refusal) if refusal else None,
        next_steps=_next_steps(me, refusal, chosen) if refusal else [],
        same_person=isinstance(refusal, SamePerson),
        area_names={a.key: a.name if me.lang == "vi" else a.name_en for a in choices.areas},
        # A client of a unit the 2025 reform ended is moved first (their page's form).
        area_ended=bool(
            choices.client
            and choices.areas
            and not choices.areas[0].in_force(me.now.astimezone(me.rt.settings.tz).date())
        ),
    )


def _said(me: Staff, exc: Exception) -> str:
    """A refusal in the page's words, this form's own where it has them."""
    if isinstance(exc, DomainError) and exc.key in SAID_HERE:
        try:
            return SAID_HERE[exc.key].said_in(me.lang) % exc.params
        except (KeyError, TypeError, ValueError):
            return str(exc)
    if isinstance(exc, ValidationError) and exc.errors() and exc.errors()[0]["loc"]:
        err = exc.errors()[0]
        field = SAID_HERE.get(f"field_{err['loc'][0]}")
        if field is not None:
            return f"{field.said_in(me.lang)}: {str(err['msg']).removeprefix('Value error, ')}"
    return me.why(exc)


def _next_steps(me: Staff, exc: Exception, chosen: dict[str, str]) -> list[tuple[str, str]]:
    """Where a refusal points to, as (address, words): the client who already has this phone
    or ID number, or a name like it in the district (their page, and this form for them with
    the same choices), the referral already open."""
    if not isinstance(exc, DomainError):
        return []
    words = {key: msg.said_in(me.lang) for key, msg in NEXT.items()}
    steps: list[tuple[str, str]] = []
    if exc.key in ("same_person", "likely_same"):
        keep = {k: chosen[k] for k in ("pathway", "partner", "intake") if k in chosen}
        for code in (c for c in str(exc.params.get("clients", "")).split(", ") if c):
            said = {"client": code}
            steps.append((f"/clients/{code}", words["page"] % said))
            query = urlencode({"client": code} | keep)
            steps.append((f"/launch?{query}", words["refer"] % said))
    elif exc.key == "already_open" and exc.params.get("referral"):
        referral = str(exc.params["referral"])
        said = {"referral": referral}
        steps.append((f"/referrals/{referral}", words["open"] % said))
    return steps
