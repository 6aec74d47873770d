"""The web's one translation of refusals and the headers every page carries.

The domain refuses with its own errors (models/errors.py, models/policy.py); here, once, they
become HTTP: cannot see is 404, cannot act is 403, a lost race is 409, anything else 422. The
API answers JSON; pages answer a short page in the visitor's language.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.policy import Forbidden
from referrals.web.staff import LoginNeeded, language, render, say
from referrals.web.words import UI

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
REFUSED = ((NotFound, 404), (Forbidden, 403), (Conflict, 409))


def refusal_status(exc: DomainError) -> int:
    return next((status for kind, status in REFUSED if isinstance(exc, kind)), 422)


def install(app: FastAPI) -> None:
    """Register the handlers and the headers' middleware on `app`."""

    @app.exception_handler(StarletteHTTPException)
    async def page_error(request: Request, exc: StarletteHTTPException) -> Response:
        """The API answers JSON; pages answer a short page in the visitor's language."""
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        lang = language(request)
        # Our HTTP refusals' details are English sentences for tools: a page in another
        # language shows its heading (words.py `http_<code>`) alone.
        detail = exc.detail if lang == "en" else ""
        page = render("error.html", lang, exc.status_code, code=exc.status_code, detail=detail)
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
        shown = say(UI[lang], exc)
        if lang != "en" and shown == str(exc):  # no words of this language for it
            shown = ""
        return render("error.html", lang, status, code=status, detail=shown)

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
        if request.url.path.startswith(
            ("/l/", "/s/", "/p/", "/clients", "/referrals", "/intakes", "/launch")
        ):
            response.headers["Cache-Control"] = "no-store"
        return response
