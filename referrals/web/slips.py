"""The printed referral slip: the staff's PDF (`/referrals/<code>/slip.pdf`) and the arrival page
its QR code opens (`/s/<token>`).

The arrival page is for whoever receives the client at the partner: no account, one button.
Opening it changes nothing (a phone's camera app previews links); its POST records the arrival
once and redirects back (303: a reload does not post again; `?done=1` only adds the thanks).
Every request is rate-limited per visitor, as the partners' links are (web/links.py); a forged
token is 404 and a closed referral 409, as pages in the partner's language, never a server
error. Thin routes over usecases/referrals/arrival.py and slips.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from referrals import locale
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.usecases.referrals.arrival import (
    SlipRefused,
    SlipView,
    office_of,
    record_arrival,
    view_slip_link,
)
from referrals.usecases.referrals.slips import slip_pdf
from referrals.web.staff import PAGES, Code, Me, now_of
from referrals.web.words import WORDS

router = APIRouter(include_in_schema=False)
STATUS = {"invalid": 404, "closed": 409}
LIMIT = "slip"  # app.state.limits' entry for the arrival pages
Token = Annotated[str, PathParam(max_length=40)]  # longer is no token of ours: refused unread


def _when(at: dt.datetime, language: str) -> str:
    """HH:MM dd/mm/yyyy in the office's zone, as every other page writes a moment."""
    return locale.when(at, language, Runtime.current().settings.tz)


def _page(view: SlipView | None, status: int = 200, **context: Any) -> HTMLResponse:
    language = view.language if view is not None else "vi"
    arrived = _when(view.arrived_at, language) if view and view.arrived_at else ""
    html = PAGES.get_template("slip.html").render(
        w=WORDS[language], lang=language, view=view, arrived=arrived, office=office_of(), **context
    )
    # What the page says changes with one press: never kept by a browser or a proxy.
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(refused: SlipRefused) -> HTMLResponse:
    return _page(refused.view, STATUS[refused.why], refused=refused.why)


@router.get("/s/{token}", response_class=HTMLResponse)
def slip_page(token: Token, request: Request, done: str | None = None) -> HTMLResponse:
    """The arrival page: who sent the client, for what, and whether the arrival is recorded."""
    request.app.state.limits[LIMIT].check(request, now_of(request))
    rt = Runtime.current()
    try:
        with transaction(rt.engine) as s:
            view = view_slip_link(s, ctx=rt.ctx, token=token)
    except SlipRefused as refused:
        return _refused(refused)
    return _page(view, done=done == "1")


@router.post("/s/{token}", response_class=HTMLResponse)
def slip_arrived(token: Token, request: Request) -> Response:
    """Record the arrival (once), then back to the page."""
    now = now_of(request)
    request.app.state.limits[LIMIT].check(request, now)
    rt = Runtime.current()
    try:
        with transaction(rt.engine) as s:
            view = record_arrival(s, ctx=rt.ctx, token=token, now=now)
    except SlipRefused as refused:
        return _refused(refused)
    return RedirectResponse(f"/s/{token}" + ("?done=1" if view.recorded else ""), 303)


@router.get("/referrals/{code}/slip.pdf")
def slip_download(code: Code, me: Me) -> Response:
    """The referral's slip to print or send, for staff who may read the referral (the use case
    refuses anyone else as reading it does: another district's referral is 404)."""
    with transaction(me.rt.engine) as s:
        pdf = slip_pdf(
            s,
            ctx=me.rt.ctx,
            code=code,
            by=me.user,
            public_url=me.rt.settings.public_url,
            now=me.now,
        )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="phieu-chuyen-gui-{code}.pdf"'},
    )
