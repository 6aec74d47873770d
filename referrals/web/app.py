"""The engine's web app: staff pages, the partners' action-link pages (`/l/<token>`), the API.

Thin routes over models/. Pages are server-rendered, work without JavaScript on a cheap phone,
and carry strict security headers (no framing, scripts and styles from this site only). The
link pages show codes and partner-facing names only. Forms are parsed here (no extra multipart
dependency) and validated by pydantic before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.policy import Forbidden
from referrals.usecases.referrals.answering import (
    DECLINE_REASONS,
    Answer,
    CapacityIn,
    LinkRefused,
    answer_link,
    set_capacity,
    view_link,
)
from referrals.web.limits import BodyLimit, Limit
from referrals.web.staff import PAGES, LoginNeeded, language, now_of, read_form, render, say
from referrals.web.words import UI, WORDS

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The web's one translation of the domain's refusals; anything else is a 422.
REFUSED = ((NotFound, 404), (Forbidden, 403), (Conflict, 409))
STATUS = {
    "invalid": 404,
    "revoked": 410,
    "expired": 410,
    "used": 409,
    "closed": 409,
    "answered": 409,
}


def refusal_status(exc: DomainError) -> int:
    return next((status for kind, status in REFUSED if isinstance(exc, kind)), 422)


def _page(language: str, status: int = 200, **context: Any) -> HTMLResponse:
    words = WORDS.get(language, WORDS["vi"])
    rt = Runtime.current()
    due = context.get("view").due_at if context.get("view") else None  # type: ignore[union-attr]
    local_due = due.astimezone(rt.settings.tz).strftime("%H:%M %d/%m/%Y") if due else ""
    html = PAGES.get_template("link.html").render(
        w=words, lang=language, due=local_due, reasons=DECLINE_REASONS, **context
    )
    return HTMLResponse(html, status_code=status)


def _refused(refused: LinkRefused, token: str | None = None) -> HTMLResponse:
    """Why the link cannot answer; with the token, a used or closed one still offers the
    capacity form (its template shows it only for those)."""
    language = refused.view.language if refused.view else "vi"
    return _page(language, STATUS[refused.why], refused=refused.why, view=refused.view, token=token)


def _again(rt: Runtime, token: str, now: dt.datetime, status: int, error: str) -> HTMLResponse:
    """The link's page once more, with what went wrong (and no client details: nothing new)."""
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
    except LinkRefused as refused:
        return _refused(refused)
    return _page(view.language, status, view=view, token=token, error=error)


def create_app(clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The app; `clock` replaces real time for the staff pages (tests and demos travel in time)."""
    from referrals.web import admin, cases, dashboard, fhir, login
    from referrals.web.api import router

    app = FastAPI(
        title="Referrals",
        version="0.1.0",
        description="Referral-workflow engine: the JSON API (/api/v1) and the partners' pages.",
    )
    app.state.clock = clock or (lambda: dt.datetime.now(dt.UTC))
    # Each app counts for itself (tests make many apps; a server makes one).
    app.state.limits = {
        "login": Limit("login", per_minute=10),
        "link": Limit("link", per_minute=30),
    }
    app.add_middleware(BodyLimit)
    app.include_router(router)
    app.include_router(fhir.router)
    for pages in (login.router, cases.router, dashboard.router, admin.router):
        app.include_router(pages)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def page_error(request: Request, exc: StarletteHTTPException) -> Response:
        """The API answers JSON; pages answer a short page in the visitor's language."""
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        page = render(
            "error.html",
            language(request),
            exc.status_code,
            code=exc.status_code,
            detail=exc.detail,
        )
        page.headers.update(exc.headers or {})  # e.g. Retry-After on 429
        return page

    @app.exception_handler(RequestValidationError)
    async def page_invalid(request: Request, exc: RequestValidationError) -> Response:
        """A malformed code in a page's address is a page that does not exist."""
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        return render("error.html", language(request), 404, code=404, detail="")

    @app.exception_handler(DomainError)
    async def refused(request: Request, exc: DomainError) -> Response:
        """A refusal no route answered itself (a lost race, for one): 404/403/409/422."""
        status = refusal_status(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status)
        lang = language(request)
        return render("error.html", lang, status, code=status, detail=say(UI[lang], exc))

    @app.exception_handler(LoginNeeded)
    async def to_login(request: Request, exc: LoginNeeded) -> Response:
        return RedirectResponse(f"/login?next={exc.next_path}", 303)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith("/api/"):
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
        if request.url.path.startswith(("/l/", "/clients", "/referrals")):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/l/{token}", response_class=HTMLResponse, include_in_schema=False)
    def link_page(token: str, request: Request) -> HTMLResponse:
        request.app.state.limits["link"].check(request, now_of(request))
        rt = Runtime.current()
        try:
            with transaction(rt.engine) as s:
                view = view_link(s, ctx=rt.ctx, token=token, now=now_of(request))
        except LinkRefused as refused:
            return _refused(refused, token)
        return _page(view.language, view=view, token=token)

    @app.post("/l/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def link_answer(token: str, request: Request) -> HTMLResponse:
        rt = Runtime.current()
        now = now_of(request)
        request.app.state.limits["link"].check(request, now)
        form = {k: v for k, v in (await read_form(request)).items() if v}
        try:
            answer = Answer.model_validate(form)
        except ValidationError:
            return _again(rt, token, now, 400, "form")
        try:
            with transaction(rt.engine) as s:
                view = answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=now)
        except LinkRefused as refused:
            return _refused(refused)
        except DomainError:
            return _again(rt, token, now, 409, "state")
        return _page(view.language, view=view, done=answer.action, token=token)

    @app.post("/l/{token}/capacity", response_class=HTMLResponse, include_in_schema=False)
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
            return _refused(refused)
        try:
            with transaction(rt.engine) as s:
                view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
        except LinkRefused as refused:  # answered or closed: the update stands all the same
            return _page(
                language, view=refused.view, refused=refused.why, token=token, capacity_done=True
            )
        return _page(view.language, view=view, token=token, capacity_done=True)

    return app
