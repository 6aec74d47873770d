"""The engine's web app: the partners' action-link pages (`/l/<token>`) and the JSON API.

Thin routes over models/answering.py. Pages are server-rendered, work without JavaScript on a
cheap phone, and show codes and partner-facing names only. Forms are parsed here (no extra
multipart dependency) and validated by pydantic before anything is written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from referrals.models.answering import DECLINE_REASONS, Answer, LinkRefused, answer_link, view_link
from referrals.models.db import transaction
from referrals.models.errors import DomainError
from referrals.models.runtime import Runtime
from referrals.web.words import WORDS

PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
STATUS = {
    "invalid": 404,
    "revoked": 410,
    "expired": 410,
    "used": 409,
    "closed": 409,
    "answered": 409,
}


def _page(language: str, status: int = 200, **context: Any) -> HTMLResponse:
    words = WORDS.get(language, WORDS["vi"])
    rt = Runtime.current()
    due = context.get("view").due_at if context.get("view") else None  # type: ignore[union-attr]
    local_due = due.astimezone(rt.settings.tz).strftime("%H:%M %d/%m/%Y") if due else ""
    html = PAGES.get_template("link.html").render(
        w=words, lang=language, due=local_due, reasons=DECLINE_REASONS, **context
    )
    return HTMLResponse(html, status_code=status)


def _refused(refused: LinkRefused) -> HTMLResponse:
    language = refused.view.language if refused.view else "vi"
    return _page(language, STATUS[refused.why], refused=refused.why, view=refused.view)


def _again(rt: Runtime, token: str, now: dt.datetime, status: int, error: str) -> HTMLResponse:
    """The link's page once more, with what went wrong (and no client details: nothing new)."""
    try:
        with transaction(rt.engine) as s:
            view = view_link(s, ctx=rt.ctx, token=token, now=now, share=False)
    except LinkRefused as refused:
        return _refused(refused)
    return _page(view.language, status, view=view, token=token, error=error)


def create_app() -> FastAPI:
    from referrals.web.api import router

    app = FastAPI(
        title="Referrals",
        version="0.1.0",
        description="Referral-workflow engine: the JSON API (/api/v1) and the partners' pages.",
    )
    app.include_router(router)

    @app.get("/l/{token}", response_class=HTMLResponse, include_in_schema=False)
    def link_page(token: str) -> HTMLResponse:
        rt = Runtime.current()
        try:
            with transaction(rt.engine) as s:
                view = view_link(s, ctx=rt.ctx, token=token, now=dt.datetime.now(dt.UTC))
        except LinkRefused as refused:
            return _refused(refused)
        return _page(view.language, view=view, token=token)

    @app.post("/l/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def link_answer(token: str, request: Request) -> HTMLResponse:
        rt = Runtime.current()
        now = dt.datetime.now(dt.UTC)
        body = (await request.body()).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(body).items() if v[-1].strip()}
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
        return _page(view.language, view=view, done=answer.action)

    return app
