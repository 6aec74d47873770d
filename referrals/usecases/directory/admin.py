"""An admin turning a partner's contact off (or on again), and what that touches first.

The switch is the admin's decision, kept in `deactivated_at` so that re-loading the YAML does
not undo it (usecases/directory/loading.py). Turning a contact off changes no referral: later prompts go to
the partner's other active contacts; with none left, the sweep records "no active contact" and
escalates to the coordinator, which is why the page shows it before the admin confirms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from referrals.models.directory import Contact, Organization
from referrals.models.errors import NotFound
from referrals.models.lifecycle import OPEN
from referrals.models.policy import Acting, actor_of, require_role
from referrals.models.roles import Role
from referrals.models.workflow import Event, Notification, Referral


def affected_by(session: Session, *, contact: Contact) -> dict[str, Any]:
    """Open referrals of the contact's partner, which of them it was prompted about, and who
    else would be asked."""
    org = session.get(Organization, contact.organization_id)
    assert org is not None
    prompted = set(
        session.scalars(
            select(col(Notification.referral_id)).where(col(Notification.contact_id) == contact.id)
        )
    )
    referrals = [
        {"code": r.code, "status": r.status, "prompted": r.id in prompted}
        for r in session.scalars(
            select(Referral)
            .where(col(Referral.organization_id) == org.id, col(Referral.status).in_(sorted(OPEN)))
            .order_by(col(Referral.launched_at))
        )
    ]
    others = session.scalar(
        select(func.count()).where(
            col(Contact.organization_id) == org.id,
            col(Contact.active),
            col(Contact.id) != contact.id,
        )
    )
    return {"partner": org, "referrals": referrals, "other_active_contacts": int(others or 0)}


def set_contact_active(
    session: Session, *, contact_id: int, active: bool, by: Acting, now: dt.datetime
) -> Contact:
    """An admin takes a partner's contact out of the messages (or back); it is on the record."""
    require_role(by, Role.admin, doing="contact activation")
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"unknown contact {contact_id}")
    contact.active = active
    contact.deactivated_at, contact.deactivated_by = (None, None) if active else (now, actor_of(by))
    contact.updated_at = now
    session.add(
        Event(
            kind="contact.activated" if active else "contact.deactivated",
            at=now,
            actor=actor_of(by),
            data={"contact": contact.id, "partner": contact.organization_id},
        )
    )
    return contact
