"""Peer educators' intake form (`/p/<token>`) and the coordinators' queue (`/intakes`).

The form is for a phone in the street: no account, the office's name and phone on top, a few
fields, one button; it answers with a code (`GT-…`), never anything of a client's record. A
standing link an admin revoked answers 410; every request is rate-limited per visitor, as the
partners' links are (web/links.py). A refused form comes back with what was typed and what to
correct, and nothing written.

The queue lists the intakes waiting in the staff member's scope; "Chuyển gửi" opens the launch
form (web/launching.py) prefilled from the intake, whose one submit registers or finds the
client, launches the referral and marks the intake taken. Thin routes over
usecases/clients/intake.py.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.locale import C_, Msg
from referrals.models.errors import DomainError
from referrals.usecases.clients.intake import (
    INTAKE_CODE,
    IntakeIn,
    PeerForm,
    PeerLinkRefused,
    intake_queue,
    peer_form,
    submit_intake,
)
from referrals.usecases.referrals.arrival import office_of
from referrals.web.staff import PAGES, Me, now_of

router = APIRouter(include_in_schema=False)

STATUS = {"invalid": 404, "revoked": 410}
LIMIT = "peer"  # app.state.limits' entry for these pages
SINGLE = ("nickname", "phone", "area", "agreed_to_contact")

# What to correct, in the form's words (a refused field, or a refusal of the use case).
FIX: dict[str, Msg] = {
    "nickname": C_("peer form", "Write a first name or nickname (at most 60 characters)."),
    "phone": C_("peer form", "The phone number is not a phone number we can call."),
    "phone_agreement": C_(
        "peer form", "Write a phone only if the person agreed that the office contacts them."
    ),
    "area": C_("peer form", "Choose the area from the list."),
    "services": C_("peer form", "Tick at least one thing the person needs, from the list."),
    "intake_area": C_("peer form", "Choose the area from the list."),
    "intake_service": C_("peer form", "Tick what the person needs from the list."),
    "form": C_("peer form", "The form was not filled in as expected; please check it."),
}


def _render(template: str, language: str, status: int = 200, **context: Any) -> HTMLResponse:
    province = Runtime.current().province.province
    html = PAGES.get_template(template).render(
        lang=language,
        office=office_of(province),  # templates/_office.html
        vi=language == "vi",
        **context,
    )
    return HTMLResponse(html, status_code=status)


def _refused(refused: PeerLinkRefused) -> HTMLResponse:
    return _render("intake_form.html", "vi", STATUS[refused.why], refused=refused.why)


def _form(
    token: str,
    view: PeerForm,
    status: int = 200,
    *,
    typed: dict[str, Any] | None = None,
    fix: str | None = None,
) -> HTMLResponse:
    error = FIX[fix].said_in(view.language) if fix else None
    return _render(
        "intake_form.html",
        view.language,
        status,
        view=view,
        token=token,
        typed=typed or {"services": []},
        error=error,
    )


@router.get("/p/{token}", response_class=HTMLResponse)
def intake_page(
    token: str,
    request: Request,
    sent: Annotated[str | None, Query(pattern=INTAKE_CODE)] = None,
) -> HTMLResponse:
    """The form; after a send (`?sent=GT-…`), the code and what happens next."""
    rt, now = Runtime.current(), now_of(request)
    request.app.state.limits[LIMIT].check(request, now)
    try:
        with transaction(rt.engine) as s:
            view = peer_form(s, ctx=rt.ctx, token=token, now=now, sent=sent)
    except PeerLinkRefused as refused:
        return _refused(refused)
    if view.sent:
        return _render("intake_done.html", view.language, view=view, token=token, code=view.sent)
    return _form(token, view)


@router.post("/p/{token}", response_class=HTMLResponse)
async def intake_send(token: str, request: Request) -> Response:
    """One intake, then the code (303: a reload does not send the person twice)."""
    rt, now = Runtime.current(), now_of(request)
    request.app.state.limits[LIMIT].check(request, now)
    fields = await _read_form(request)
    typed = _typed(fields)
    try:
        with transaction(rt.engine) as s:
            view = peer_form(s, ctx=rt.ctx, token=token, now=now)
    except PeerLinkRefused as refused:
        return _refused(refused)
    try:
        data = IntakeIn.model_validate(typed)
    except ValidationError as exc:
        return _form(token, view, 400, typed=_shown(typed), fix=_fix(exc))
    try:
        with transaction(rt.engine) as s:
            code = submit_intake(s, ctx=rt.ctx, token=token, data=data, now=now)
    except PeerLinkRefused as refused:
        return _refused(refused)
    except DomainError as exc:
        fix = exc.key if exc.key in FIX else "form"
        return _form(token, view, 400, typed=_shown(typed), fix=fix)
    return RedirectResponse(f"/p/{token}?sent={code}", status_code=303)


async def _read_form(request: Request) -> dict[str, list[str]]:
    """The posted form with its repeated names (the services' checkboxes) kept; the body is
    already limited (web/limits.py). Text that is not UTF-8, or holds a NUL byte, is refused."""
    body = await request.body()
    try:
        fields = parse_qs(body.decode("utf-8"), errors="strict")
    except UnicodeDecodeError:
        raise HTTPException(400, "the form is not UTF-8 text") from None
    if any("\x00" in k or any("\x00" in x for x in v) for k, v in fields.items()):
        raise HTTPException(400, "a form field holds a NUL byte")
    return fields


def _typed(fields: dict[str, list[str]]) -> dict[str, Any]:
    """The form as the intake's model reads it: one value per field (the last), the services
    as a list, empty fields left out, a name the form does not have kept (the model refuses it)."""
    typed: dict[str, Any] = {}
    for name, values in fields.items():
        kept = [v.strip() for v in values if v.strip()]
        if name == "services":
            typed[name] = kept
        elif kept:
            typed[name] = kept[-1]
    return typed


def _shown(typed: dict[str, Any]) -> dict[str, Any]:
    """What was typed, to fill the form again (text fields shortened: a refused oversize name
    is not worth echoing whole)."""
    shown = {k: str(typed.get(k, ""))[:60] for k in SINGLE}
    return shown | {"services": list(typed.get("services", []))}


def _fix(exc: ValidationError) -> str:
    err = exc.errors()[0]
    if not err["loc"]:
        return "phone_agreement"  # the one rule across fields
    field = str(err["loc"][0])
    return field if field in FIX else "form"


@router.get("/intakes", response_class=HTMLResponse)
def intakes_page(me: Me) -> HTMLResponse:
    """The intakes waiting in the staff member's scope (the listing is recorded)."""
    with transaction(me.rt.engine) as s:
        rows = intake_queue(s, by=me.user, ctx=me.rt.ctx, now=me.now, via="web")
    return me.page("intakes.html", rows=rows)
