"""Logging in and out, the language switch, and the home page that sends each role its way."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.locale import LANGUAGES
from referrals.models.people import Role
from referrals.usecases.staff.accounts import LoginRefused, log_in, log_out
from referrals.web import sessions
from referrals.web.staff import LoginNeeded, Me, language, now_of, read_form, render
from referrals.web.staff import me as signed_in_staff
from referrals.web.words import UI

router = APIRouter(include_in_schema=False)
HOME = {
    Role.coordinator.value: "/cases",
    Role.manager.value: "/dashboard",
    Role.admin.value: "/admin",
}


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never `//evil.example` or a full URL (no open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    now = now_of(request)
    anonymous = sessions.current(request, now)
    if anonymous is None or anonymous.user_id is not None:
        anonymous = sessions.fresh(now)
    page = render(
        "login.html",
        language(request),
        status,
        csrf=anonymous.csrf,
        next=_safe_next(request.query_params.get("next")),
        error=UI[language(request)][f"login_{error}"] if error else None,
    )
    sessions.store(page, anonymous)
    return page


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    try:
        signed_in = signed_in_staff(request)
    except LoginNeeded:
        return _login_page(request)
    return RedirectResponse(HOME.get(signed_in.user.role, "/"), 303)  # a link here logs no one out


def _check(username: str, password: str, now: dt.datetime) -> tuple[int, int, str] | LoginRefused:
    """(user id, session epoch, role) or the refusal; runs in a worker thread (scrypt is slow)."""
    with transaction(Runtime.current().engine) as s:
        result = log_in(s, username=username[:60], password=password[:200], now=now)
        if isinstance(result, LoginRefused):
            return result
        assert result.id is not None  # a logged-in user is a stored row
        return result.id, result.session_epoch, result.role


@router.post("/login")
async def login(request: Request) -> Response:
    now = now_of(request)
    request.app.state.limits["login"].check(request, now)
    fields = await read_form(request)
    before = sessions.current(request, now)
    if before is None or not hmac.compare_digest(
        fields.get("csrf", "").encode(), before.csrf.encode()
    ):
        return _login_page(request, 403, "csrf")
    result = await run_in_threadpool(
        _check, fields.get("username", ""), fields.get("password", ""), now
    )
    if isinstance(result, LoginRefused):
        return _login_page(request, 401, result.why)
    user_id, epoch, role = result
    target = _safe_next(fields.get("next"))
    response = RedirectResponse(HOME.get(role, "/") if target == "/" else target, 303)
    sessions.store(response, sessions.fresh(now, user_id, epoch))  # a new session id, always
    return response


@router.post("/logout")
async def logout(request: Request, me: Me) -> Response:
    await me.form(request)
    with transaction(me.rt.engine) as s:
        assert me.user.id is not None  # the session's user is a stored row
        log_out(s, user_id=me.user.id, now=me.now)
    response = RedirectResponse("/login", 303)
    sessions.store(response, None)
    return response


@router.get("/lang/{code}")
def switch_language(
    code: Annotated[str, Path(pattern=r"^[a-z]{2,3}$")], request: Request
) -> Response:
    if code not in LANGUAGES:  # asked when called: the offered languages are one table
        raise HTTPException(404, "no such language")
    response = RedirectResponse(_safe_next(request.query_params.get("next")), 303)
    response.set_cookie("lang", code, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.get("/")
def home(me: Me) -> Response:
    return RedirectResponse(HOME.get(me.user.role, "/cases"), 303)
