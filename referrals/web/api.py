"""The JSON API under /api/v1: thin routes over models/, one policy (models/policy.py).

Authentication: `Authorization: Bearer <token>` (per-user tokens, `referrals token create`).
Coordinators see and act in their district, managers see everything and change nothing, admins
do everything. A referral of another district answers 404, as if it did not exist. Changes take
the version the caller last saw: a stale one gets 409 with the current version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.bounds import MAX_ROWS
from referrals.models.codes import new_code
from referrals.models.errors import Conflict
from referrals.models.lifecycle import Action
from referrals.models.people import User
from referrals.models.policy import listing_district
from referrals.queries.directory import directory, pathway_templates
from referrals.queries.reading import Reader, list_referrals, referral_for
from referrals.usecases.clients.clients import ClientIn, add_client
from referrals.usecases.clients.finding import find_clients
from referrals.usecases.referrals.advancing import advance, get_referral
from referrals.usecases.referrals.launching import LaunchRequest, launch_one
from referrals.usecases.staff.tokens import user_for_token

router = APIRouter(prefix="/api/v1")
# Codes, keys and slugs: plain characters only (PostgreSQL refuses NUL in text, for one).
CODE = r"^[A-Za-z0-9-]{1,20}$"
KEY = r"^[A-Za-z0-9_-]{1,60}$"
CodePath = Annotated[str, Path(pattern=CODE)]
KeyQuery = Annotated[str | None, Query(pattern=KEY)]


class Problem(BaseModel):
    detail: str
    version: int | None = None


def runtime() -> Runtime:
    return Runtime.current()


def current_user(
    rt: Annotated[Runtime, Depends(runtime)],
    authorization: Annotated[str | None, Header()] = None,
) -> User:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""  # RFC 6750: the scheme is required
    with transaction(rt.engine) as s:
        user = user_for_token(s, token) if token else None
    if user is None:
        raise HTTPException(401, "a valid API token is needed (Authorization: Bearer ...)")
    return user


def reader(rt: Annotated[Runtime, Depends(runtime)]) -> Iterator[Reader]:
    connection = rt.engine.raw_connection()
    try:
        yield Reader(connection, rt.engine.dialect.name)
    finally:
        connection.close()


Me = Annotated[User, Depends(current_user)]
Rt = Annotated[Runtime, Depends(runtime)]
Read = Annotated[Reader, Depends(reader)]


@router.get("/partners", tags=["directory"])
def partners(rt: Rt, _: Me) -> list[dict[str, Any]]:
    """The partner directory: organisations, services, areas, contacts."""
    with Session(rt.engine) as s:
        return directory(s)


@router.get("/directory/hsds", tags=["directory"])
def directory_hsds(rt: Rt, _: Me) -> dict[str, Any]:
    """The directory as Open Referral HSDS 3.1, as `referrals directory export` writes it."""
    from referrals.interop.hsds import export_directory

    with Session(rt.engine) as s:
        return export_directory(
            s, province=rt.province, tz=rt.settings.tz, now=dt.datetime.now(dt.UTC)
        )


@router.get("/pathways", tags=["directory"])
def pathways(rt: Rt, _: Me) -> list[dict[str, Any]]:
    """The pathway templates (latest versions) with their steps and due rules."""
    with Session(rt.engine) as s:
        return pathway_templates(s)


@router.get("/referrals", tags=["referrals"])
def referrals(
    rt: Rt,
    me: Me,
    read: Read,
    status: KeyQuery = None,
    partner: KeyQuery = None,
    district: KeyQuery = None,
    coordinator: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,60}$")] = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROWS)] = 0,
) -> list[dict[str, Any]]:
    """Referrals you may see, newest first (most late first with `overdue`)."""
    return list_referrals(
        read,
        tz=rt.settings.tz,
        now=dt.datetime.now(dt.UTC),
        overdue=overdue,
        status=status,
        partner=partner,
        district=listing_district(me, district),
        coordinator=coordinator,
        limit=limit,
        offset=offset,
    )


@router.get("/referrals/{code}", tags=["referrals"], responses={404: {"model": Problem}})
def referral(code: CodePath, rt: Rt, me: Me, read: Read) -> dict[str, Any]:
    """One referral with its steps, timeline and messages."""
    return referral_for(read, me, code=code, tz=rt.settings.tz, now=dt.datetime.now(dt.UTC))


class LaunchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # `true` is no version, "1" no flag

    client: str = Field(pattern=CODE, description="the client's code")
    pathway: str = Field(pattern=KEY)
    partner: str = Field(pattern=KEY)
    urgent: bool = False


class Launched(BaseModel):
    code: str


@router.post(
    "/referrals",
    status_code=201,
    tags=["referrals"],
    responses={403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
def launch(body: LaunchIn, rt: Rt, me: Me) -> Launched:
    """Launch a referral of one of your district's clients (consent must cover it)."""
    code = new_code("R")
    request = LaunchRequest(
        client_code=body.client, pathway=body.pathway, partner=body.partner, urgent=body.urgent
    )
    with transaction(rt.engine) as s:  # refusals: web/errors.py answers 404/403/409/422
        launch_one(
            s, code=code, request=request, coordinator=me, ctx=rt.ctx, now=dt.datetime.now(dt.UTC)
        )
    return Launched(code=code)


class ClientFound(BaseModel):
    code: str
    name: str | None = Field(description="None once the client's personal data was erased")
    district: str
    district_name: str
    open_referrals: int
    last_activity: dt.datetime


@router.get("/clients", tags=["clients"], responses={422: {"model": Problem}})
def find(
    q: Annotated[str, Query(min_length=2, max_length=120)], rt: Rt, me: Me
) -> list[ClientFound]:
    """Clients you may see matching `q` (a word of the name, accents optional; a phone in any
    form; an ID number; a client's or referral's code), newest activity first. Each client
    listed by name is recorded on their timeline as seen by you. Keep `q` out of proxies' logs
    (README: Finding a client)."""
    with transaction(rt.engine) as s:
        found = find_clients(s, by=me, text=q, ctx=rt.ctx, now=dt.datetime.now(dt.UTC), via="api")
    return [ClientFound(**vars(f)) for f in found]


class Registered(BaseModel):
    code: str
    district: str


@router.post(
    "/clients",
    status_code=201,
    tags=["clients"],
    responses={403: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}},
)
def register(body: ClientIn, rt: Rt, me: Me) -> Registered:
    """Register a client of your district. A phone or ID number that is already a client's is
    refused (409) naming them; `different_person` with a reason registers someone else."""
    with transaction(rt.engine) as s:
        c = add_client(s, data=body, ctx=rt.ctx, created_by=me, now=dt.datetime.now(dt.UTC))
        return Registered(code=c.code, district=c.area_key)


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["accept", "decline", "done", "fail", "hold", "resume", "cancel"]
    step: str | None = Field(default=None, pattern=KEY)
    reason: str | None = Field(default=None, pattern=KEY)
    version: int = Field(ge=1, le=2**31 - 1, description="the referral's version you last saw")


class Moved(BaseModel):
    code: str
    status: str
    version: int


@router.post(
    "/referrals/{code}/actions",
    tags=["referrals"],
    responses={
        403: {"model": Problem},
        404: {"model": Problem},
        409: {"model": Problem},
        422: {"model": Problem},
    },
)
def act(code: CodePath, body: ActionIn, rt: Rt, me: Me) -> Moved:
    """Record an event on a referral: accept, decline, done, fail, hold, resume or cancel."""
    try:
        with transaction(rt.engine) as s:
            moved = advance(
                s,
                code=code,
                action=Action(body.action),
                by=me,
                ctx=rt.ctx,
                now=dt.datetime.now(dt.UTC),
                step_key=body.step,
                reason=body.reason,
                expected_version=body.version,
            )
            return Moved(code=moved.code, status=moved.status, version=moved.version)
    except Conflict as exc:  # the caller needs the version to try again; other refusals: app.py
        with transaction(rt.engine) as s:
            current = get_referral(s, code).version
        raise HTTPException(409, {"message": str(exc), "version": current}) from None
