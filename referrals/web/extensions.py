"""More time (gia hạn) on the web: a partner asks from its link's page, a coordinator decides
from the referral's page (usecases/referrals/extending.py has the rules).

- `POST /l/<token>/extend`: the partner's form (templates/_extend.html, included by link.html):
  the step and version the page showed, a new date typed dd/mm/yyyy and a reason. Rate-limited
  like every link request; a refusal is the link's page again with what went wrong in the
  contact's language (never a server error), a success goes back to the link's page (303),
  which says whether the request was granted or waits for the office.
- `POST /referrals/<code>/extensions/<id>`: "Đồng ý" / "Không đồng ý" on the referral's page
  (templates/_extensions.html), with the staff forms' CSRF token; a lost race is 409.

The link's page reads the step's last request through `extension_of`, a page global set here,
so the page that links.py renders needs nothing from this module but the include.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.locale import N_, Msg
from referrals.locale.dates import NotADay, parse_day
from referrals.models.errors import Conflict, DomainError
from referrals.usecases.referrals.answering import LinkRefused, LinkView, view_link
from referrals.usecases.referrals.extending import (
    ExtensionAsk,
    Latest,
    ask_extension,
    decide_extension,
    latest_extension,
)
from referrals.web import links
from referrals.web.cases import show_referral
from referrals.web.staff import PAGES, REFUSALS, Code, Me, now_of, read_form
from referrals.web.words import WORDS

router = APIRouter(include_in_schema=False)
ExtensionId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]

# Why the partner's request was not taken, in the contact's language (the refusals' keys).
REFUSED: dict[str, Msg] = {
    "extension_not_later": N_("The new date must be after the current deadline (%(due)s)."),
    "extension_past": N_("That day is already over: choose a later date."),
    "extension_too_far": N_("Choose a date at most %(days)s days from today."),
    "extension_waiting": N_("A request for more time already waits for the office's answer."),
    "on_hold": N_("The referral is paused: more time cannot be asked for now."),
    "extension_acknowledge": N_("Please accept or decline the referral first."),
    "reason": N_("Please say why more time is needed, in at most 300 characters."),
}


@router.post("/l/{token}/extend", response_class=HTMLResponse)
async def link_extend(token: str, request: Request) -> Response:
    """A partner's request for more time, then back to the link's page (303)."""
    rt = Runtime.current()
    now = now_of(request)
    request.app.state.limits["link"].check(request, now)
    form = {k: v for k, v in (await read_form(request)).items() if v}
    typed = {"new_date": form.get("new_date", "")[:30], "reason": form.get("reason", "")[:300]}
    try:
        day = parse_day(form.get("new_date", ""))
        ask = ExtensionAsk.model_validate(form | {"new_date": day.isoformat()})
    except NotADay:
        return _again(rt, token, now, 400, "day", typed)
    except ValidationError as exc:
        field = exc.errors()[0]["loc"][:1]
        return _again(rt, token, now, 400, "reason" if field == ("reason",) else "form", typed)
    try:
        with transaction(rt.engine) as s:
            asked = ask_extension(s, ctx=rt.ctx, token=token, ask=ask, now=now)
    except LinkRefused as refused:
        return links.refused_page(refused, token)
    except DomainError as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        return _again(rt, token, now, status, exc.key or "state", typed, exc.params)
    return RedirectResponse(f"/l/{token}?extended={asked.status}#extend", status_code=303)


def _again(
    rt: Runtime,
    token: str,
    now: dt.datetime,
    status: int,
    key: str,
    typed: dict[str, str],
    params: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The link's page once more, saying what went wrong, with what was typed kept to correct
    (and no client details: nothing new was shown)."""
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
    except LinkRefused as refused:
        return links.refused_page(refused, token)
    said = _said(view.language, key, params or {})
    return links.page(
        view.language, status, view=view, token=token, extend_error=said, extend_typed=typed
    )


def _said(language: str, key: str, params: dict[str, Any]) -> str:
    """A refusal in the contact's words: ours, the link pages' own (a date, a form), or theirs
    for a page that changed meanwhile."""
    found = REFUSED.get(key)
    if found is not None:
        text = found.said_in(language)
        try:
            return text % params if "%(" in text else text
        except (KeyError, TypeError, ValueError):
            return text
    words = WORDS[language]
    return words.get(f"error_{key}") or words["error_state"]


def _latest(view: LinkView | None) -> Latest | None:
    """The last request for more time on the step the link's page shows (its page global)."""
    if view is None or not view.step:
        return None
    with Session(Runtime.current().engine) as s:
        return latest_extension(s, code=view.code, step_key=view.step)


PAGES.globals["extension_of"] = _latest


@router.post("/referrals/{code}/extensions/{extension_id}")
async def extension_decision(
    code: Code, extension_id: ExtensionId, request: Request, me: Me
) -> Response:
    """The coordinator grants or refuses a waiting request, then back to the referral's page."""
    form = await me.form(request)
    decision = form.get("decision")
    if decision not in ("grant", "refuse"):
        raise HTTPException(400, "decision must be grant or refuse")
    try:
        with transaction(me.rt.engine) as s:
            decide_extension(
                s,
                ctx=me.rt.ctx,
                code=code,
                extension_id=extension_id,
                grant=decision == "grant",
                by=me.user,
                now=me.now,
            )
    except REFUSALS:
        raise
    except DomainError as exc:
        return show_referral(me, code, 409 if isinstance(exc, Conflict) else 422, me.why(exc))
    return RedirectResponse(f"/referrals/{code}#extensions", 303)
