"""The engine's web app: staff pages, the partners' action-link pages (`/l/<token>`), the API.

The factory only assembles: routers (web/api.py, web/fhir.py, the staff pages, web/links.py),
the body limit, the refusal handlers and security headers (web/errors.py), the static files.
Thin routes over the use cases. Pages are server-rendered, work without JavaScript on a cheap
phone, and carry strict security headers (no framing, scripts and styles from this site only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from referrals.web.limits import BodyLimit, Limit


@asynccontextmanager
async def _database_first(_app: FastAPI) -> AsyncIterator[None]:
    """A server starts only on an existing database (settings.NoDatabase names where it looked
    and how to make one), instead of answering every request with an error."""
    from referrals.infra.runtime import Runtime

    Runtime.current().engine  # noqa: B018
    yield


def create_app(clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The app; `clock` replaces real time for the staff pages (tests and demos travel in time)."""
    from referrals.notifiers.kick import long_lived
    from referrals.web import (
        admin,
        cases,
        clients,
        dashboard,
        errors,
        extensions,
        fhir,
        intake,
        launching,
        links,
        login,
        merging,
        no_shows,
        receipts,
        slips,
        uploads,
    )
    from referrals.web.api import router

    long_lived()  # messages queued by a request go out at once, from this process's kick thread
    app = FastAPI(
        title="Referrals",
        version="0.1.0",
        description="Referral-workflow engine: the JSON API (/api/v1) and the partners' pages.",
        lifespan=_database_first,
    )
    app.state.clock = clock or (lambda: dt.datetime.now(dt.UTC))
    # Each app counts for itself (tests make many apps; a server makes one).
    app.state.limits = {
        "login": Limit("login", per_minute=10),
        "link": Limit("link", per_minute=30),
        "slip": Limit("slip", per_minute=30),  # the printed slip's arrival page (web/slips.py)
        "peer": Limit("peer", per_minute=30),  # peer groups' intake form (web/intake.py)
    }
    app.add_middleware(BodyLimit)
    app.include_router(router)
    app.include_router(fhir.router)
    app.include_router(extensions.router)  # more time (gia hạn): partners ask, staff decide
    app.include_router(receipts.router)  # the gateways' delivery receipts (issue 24)
    pages_routers = (
        login.router,
        cases.router,
        clients.router,
        launching.router,
        merging.router,
        uploads.router,
        intake.router,
        no_shows.router,
    )
    for pages in (*pages_routers, dashboard.router, admin.router, links.router, slips.router):
        app.include_router(pages)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    errors.install(app)
    return app
