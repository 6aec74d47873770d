"""Who may see and do what, in one place (the API uses it now; the pages and CLI will too).

Coordinators work in their district: they see and act on its referrals and clients only.
Managers see every district and change nothing through the API. Admins see and do everything.
"""

from __future__ import annotations

from referrals.models.people import Role, User


def sees_area(user: User, area_key: str) -> bool:
    if user.role in (Role.manager.value, Role.admin.value):
        return True
    return user.role == Role.coordinator.value and user.area_key == area_key


def acts_in_area(user: User, area_key: str) -> bool:
    if user.role == Role.admin.value:
        return True
    return user.role == Role.coordinator.value and user.area_key == area_key


def district_scope(user: User) -> str | None:
    """The one district a user is limited to when listing, or None for all."""
    return user.area_key if user.role == Role.coordinator.value else None
