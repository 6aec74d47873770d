"""Admins' pages: partners and their contacts (deactivate, and what that affects), users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.models.directory import Contact
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Role, User
from referrals.queries.views import actor_names, areas
from referrals.usecases.directory.admin import affected_by, set_contact_active
from referrals.usecases.staff.accounts import UserIn, add_user, set_active
from referrals.web.staff import Me, Staff, require

router = APIRouter(prefix="/admin", include_in_schema=False)
Username = Annotated[str, Path(pattern=r"^[a-z0-9_.-]{2,60}$")]
ContactId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _admin_page(me: Staff, status: int = 200, error: str | None = None) -> Response:
    from referrals.queries.directory import directory

    with Session(me.rt.engine) as s:
        partners = directory(s)
        users = list(s.scalars(select(User).order_by(User.role, User.username)))
    with me.reader() as read:
        known = areas(read)
    return me.page("admin.html", status, partners=partners, users=users, areas=known, error=error)


@router.get("")
def admin(me: Me) -> Response:
    require(me, Role.admin)
    return _admin_page(me)


@router.get("/contacts/{contact_id}")
def contact_page(contact_id: ContactId, me: Me) -> Response:
    """One contact and the open referrals that turning it off would affect."""
    require(me, Role.admin)
    with Session(me.rt.engine) as s:
        contact = s.get(Contact, contact_id)
        if contact is None:
            raise HTTPException(404, "no such contact")
        impact = affected_by(s, contact=contact)
    by = contact.deactivated_by
    with me.reader() as read:  # who turned it off, by name (the column keeps `user:<username>`)
        names = actor_names(read, {by}) if by else {}
    deactivated_by = names.get(by or "", (by or "").removeprefix("user:"))
    return me.page("contact.html", contact=contact, impact=impact, deactivated_by=deactivated_by)


@router.post("/contacts/{contact_id}/active")
async def contact_active(contact_id: ContactId, request: Request, me: Me) -> Response:
    require(me, Role.admin)
    form = await me.form(request)
    try:
        with transaction(me.rt.engine) as s:
            set_contact_active(
                s,
                contact_id=contact_id,
                active=form.get("active") == "1",
                by=me.user,
                now=me.now,
            )
    except NotFound:
        raise HTTPException(404, "no such contact") from None
    return RedirectResponse(f"/admin/contacts/{contact_id}", 303)


@router.post("/users")
async def user_new(request: Request, me: Me) -> Response:
    require(me, Role.admin)
    form = await me.form(request)
    password = form.pop("password", "")
    try:
        data = UserIn.model_validate(form)
        with transaction(me.rt.engine) as s:
            add_user(s, data=data, password=password, by=me.user, now=me.now)
    except (ValidationError, DomainError) as exc:
        return _admin_page(me, 422, me.why(exc))
    return RedirectResponse("/admin", 303)


@router.post("/users/{username}/active")
async def user_active(username: Username, request: Request, me: Me) -> Response:
    require(me, Role.admin)
    form = await me.form(request)
    if username == me.user.username:
        return _admin_page(me, 422, me.w["err_self"])
    try:
        with transaction(me.rt.engine) as s:
            set_active(
                s,
                username=username,
                active=form.get("active") == "1",
                by=me.user,
                now=me.now,
            )
    except DomainError as exc:
        return _admin_page(me, 404, me.say(exc))
    return RedirectResponse("/admin", 303)
