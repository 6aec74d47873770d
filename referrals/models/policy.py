"""Who may see and do what, in one place: the CLI, the API and the pages all ask here.

Coordinators work in their district: they see and act on its referrals and clients only, and
on those of the areas within it and of the areas that took over its territory after a reform
(a coordinator of Nha Trang city, ended on 30/06/2025, works on the wards that replaced it:
config/areas.py `covered`).
Managers see every district, read reports and exports, and change no referral. Admins see and
do everything, and alone run the operator's commands (keys, audit, users, delivery, sweeps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from referrals.models.errors import DomainError, NotFound
from referrals.models.roles import Role


class User(Protocol):
    """Whoever acts: a `people.User` row, or the same three fields read without the ORM."""

    # Read-only members: the policy only reads them, and a frozen `queries.reading.Person`
    # (the fields read without the ORM) must fit as well as a row.
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def area_key(self) -> str | None: ...


@dataclass(frozen=True)
class PartnerContact:
    """A partner's contact acting through the link in its message: it has no account, and acts
    on its own organisation's referrals only (which step and answer, answering.py decides)."""

    contact_id: int
    organization_id: int


@dataclass(frozen=True)
class System:
    """The engine itself, acting on its own rules (a withdrawal's cascade, a scheduled pass)."""


SYSTEM = System()
Acting = User | PartnerContact | System


def actor_of(by: Acting) -> str:
    """How whoever acts appears on the timeline: a username or a contact's id, never a client."""
    if isinstance(by, System):
        return "system"
    if isinstance(by, PartnerContact):
        return f"contact:{by.contact_id}"
    return f"user:{by.username}"


class Forbidden(DomainError):
    """The user may see this but not do that (403 on the web)."""


def area_scope(key: str) -> frozenset[str]:
    """The areas a user scoped to KEY works on, from the installation's province config: the
    one place the areas and their succession are defined (the directory's tables are loaded
    from it; a listing binds this same list: queries/areas.py)."""
    from referrals.config.province import load_province
    from referrals.config.settings import get_settings

    return load_province(get_settings().config_dir).area_scopes.get(key, frozenset({key}))


def _in_scope(user: User, area_key: str) -> bool:
    return user.area_key is not None and (
        user.area_key == area_key or area_key in area_scope(user.area_key)
    )


def sees_area(user: User, area_key: str) -> bool:
    if user.role in (Role.manager.value, Role.admin.value):
        return True
    return user.role == Role.coordinator.value and _in_scope(user, area_key)


def acts_in_area(user: User, area_key: str) -> bool:
    if user.role == Role.admin.value:
        return True
    return user.role == Role.coordinator.value and _in_scope(user, area_key)


def district_scope(user: User) -> str | None:
    """The one district a user is limited to when listing, or None for all (the listing's SQL
    widens it to the areas within and after it: queries/areas.py)."""
    return user.area_key if user.role == Role.coordinator.value else None


def listing_district(user: User, asked: str | None) -> str | None:
    """The district a list or report is limited to: a coordinator's own (asking for another
    district is refused), else the one asked for (None: every district)."""
    scope = district_scope(user)
    if scope is not None and asked not in (None, scope):
        raise Forbidden(f"{user.username} works in {scope}, not {asked}")
    return scope or asked


def require_area(user: User, area_key: str, *, what: str, act: bool = True) -> None:
    """Refuse a user who may not see (as if `what` did not exist) or not act in `area_key`."""
    if not sees_area(user, area_key):
        raise NotFound(f"unknown {what}")
    if act and not acts_in_area(user, area_key):
        raise Forbidden(f"{user.username} ({user.role}) may read {what} but not change it")


def require_role(user: Acting, *roles: Role, doing: str) -> None:
    """Refuse `doing` to anyone without one of `roles` (the engine itself may do it all)."""
    if isinstance(user, System):
        return
    if isinstance(user, PartnerContact):
        raise Forbidden(f"{doing} is for staff")
    if user.role not in {r.value for r in roles}:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"{doing} is for {allowed} users; {user.username} is a {user.role}")


def require_referral(
    by: Acting, *, code: str, area_key: str, organization_id: int, act: bool = True
) -> None:
    """May `by` see (and, with `act`, change) referral `code`? Staff by district and role; a
    partner's contact on its organisation's referrals only. Cannot see: as if absent."""
    if isinstance(by, System):
        return
    if isinstance(by, PartnerContact):
        if by.organization_id != organization_id:
            raise NotFound(f"unknown referral {code!r}")
        return
    require_area(by, area_key, what=f"referral {code!r}", act=act)


def require_launch(by: User, *, client_code: str, area_key: str, override: bool) -> None:
    """A launch is a coordinator's act in the client's district; a launch without the client's
    consent is a manager's recorded decision, in any district."""
    if not override:
        require_area(by, area_key, what=f"client {client_code!r}")
    elif by.role not in (Role.manager.value, Role.admin.value):
        raise Forbidden(
            "only a manager may launch without the client's consent", key="override_role"
        )
