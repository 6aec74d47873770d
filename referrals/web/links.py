"""The partners' action-link pages (`/l/<token>`): no account, one tap, codes only.

A contact opens the link from its SMS or e-mail; the page lists the referral's steps in the
contact's language and answers the one that is the partner's now with one POST (never a GET:
mail scanners that open links change nothing). The POST redirects back to the link's page
(`?done=<answer>` only picks the thanks), which shows the next step at once when it is the
partner's too, or says the office acts next: one link serves the partner's whole loop. Each
request is rate-limited per visitor; refusals (revoked, expired, closed, a stale or replayed
answer) are pages with their own status, never a server error.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from referrals import locale
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.locale.dates import NotADay, parse_day
from referrals.models.errors import DomainError
from referrals.usecases.referrals.answering import (
    ANSWERS,
    CONFIRMED,
    DECLINE_REASONS,
    NO_SHOW,
    Answer,
    CapacityIn,
    LinkRefused,
    answer_link,
    set_capacity,
    view_link,
)
from referrals.usecases.referrals.arrival import office_of
from referrals.web.staff import PAGES, now_of, read_form
from referrals.web.words import WORDS

router = APIRouter(prefix="/l", include_in_schema=False)
STATUS = {
    "invalid": 404,
    "revoked": 410,
    "expired": 410,
    "used": 409,
    "closed": 409,
    "answered": 409,
}


def page(language: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The partner's link page in `language` (also for web/extensions.py's answers)."""
    words = WORDS.get(language, WORDS["vi"])
    rt = Runtime.current()
    view = context.get("view")
    due = view.due_at if view is not None else None
    local_due = locale.when(due.astimezone(rt.settings.tz), language) if due else ""

    def day(value: dt.datetime | None) -> str:
        """A step's date as the office writes it, dd/mm/yyyy in its zone."""
        return locale.day(value, language, rt.settings.tz) if value else ""

    html = PAGES.get_template("link.html").render(
        w=words,
        lang=language,
        due=local_due,
        day=day,
        reasons=DECLINE_REASONS,
        office=office_of(rt.province.province),
        **context,
    )
    return HTMLResponse(html, status_code=status)


def refused_page(refused: LinkRefused, token: str | None = None) -> HTMLResponse:
    """Why the link cannot answer; with the token, a used or closed one still offers the
    capacity form (its template shows it only for those)."""
    language = refused.view.language if refused.view else "vi"
    return page(language, STATUS[refused.why], refused=refused.why, view=refused.view, token=token)


def _again(
    rt: Runtime, token: str, now: dt.datetime, status: int, error: str, typed_on: str = ""
) -> HTMLResponse:
    """The link's page once more, with what went wrong (and no client details: nothing new);
    a refused date stays in its field, to correct."""
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
    except LinkRefused as refused:
        return refused_page(refused)
    return page(view.language, status, view=view, token=token, error=error, typed_on=typed_on)


def _typed_day(form: dict[str, str]) -> dict[str, str]:
    """The form with its date (`on`) as typed here, dd/mm/yyyy (or ISO), turned into ISO for
    the answer's model; raises NotADay for one that is not a date."""
    if "on" in form:
        return form | {"on": parse_day(form["on"]).isoformat()}
    return form


@router.get("/{token}", response_class=HTMLResponse, include_in_schema=False)
def link_page(token: str, request: Request, done: str | None = None) -> HTMLResponse:
    """The link's page; `done` (after an answer's redirect) only adds the thanks, and a
    referral the answer closed shows the thanks rather than the refusal."""
    request.app.state.limits["link"].check(request, now_of(request))
    rt = Runtime.current()
    thanked = done if done in (*ANSWERS, NO_SHOW) else None
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now_of(request))
    except LinkRefused as refused:
        if thanked and refused.why == "closed" and refused.view is not None:
            return page(refused.view.language, view=refused.view, done=thanked, closed=True)
        return refused_page(refused, token)
    return page(view.language, view=view, token=token, done=thanked)


@router.post("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_answer(token: str, request: Request) -> Response:
    """One answer, then back to the link's page (303: a reload does not post it again)."""
    rt = Runtime.current()
    now = now_of(request)
    request.app.state.limits["link"].check(request, now)
    form = {k: v for k, v in (await read_form(request)).items() if v}
    try:
        answer = Answer.model_validate(_typed_day(form))
    except NotADay:
        return _again(rt, token, now, 400, "day", typed_on=form["on"][:30])
    except ValidationError:
        return _again(rt, token, now, 400, "form")
    if answer.action in CONFIRMED and not answer.confirm:
        if answer.reason not in (None, *DECLINE_REASONS):
            return _again(rt, token, now, 400, "form")
        return _confirming(rt, token, now, answer)
    try:
        with transaction(rt.engine) as s:
            answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=now)
    except LinkRefused as refused:
        return refused_page(refused, token)
    except DomainError as exc:
        if exc.key == "appointment_day":  # the date typed, not the referral, is wrong
            return _again(rt, token, now, 400, "appointment_day", typed_on=form.get("on", "")[:30])
        return _again(rt, token, now, 409, "state")
    return RedirectResponse(f"/l/{token}?done={answer.action}", status_code=303)


def _confirming(rt: Runtime, token: str, now: dt.datetime, answer: Answer) -> HTMLResponse:
    """A decline or a no-show asks once more before anything is written (a mistaken tap on a
    phone should cost one more tap, not a referral)."""
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
    except LinkRefused as refused:
        return refused_page(refused)
    return page(view.language, view=view, token=token, confirming=answer)


@router.post("/{token}/capacity", response_class=HTMLResponse, include_in_schema=False)
async def link_capacity(token: str, request: Request) -> HTMLResponse:
    rt = Runtime.current()
    now = now_of(request)
    request.app.state.limits["link"].check(request, now)
    try:
        capacity = CapacityIn.model_validate(dict(await read_form(request)))
    except ValidationError:
        return _again(rt, token, now, 400, "form")
    try:
        with transaction(rt.engine) as s:
            language = set_capacity(s, ctx=rt.ctx, token=token, capacity=capacity, now=now)
    except LinkRefused as refused:
        return refused_page(refused)
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
    except LinkRefused as refused:  # answered or closed: the update stands all the same
        return page(
            language, view=refused.view, refused=refused.why, token=token, capacity_done=True
        )
    return page(view.language, view=view, token=token, capacity_done=True)
