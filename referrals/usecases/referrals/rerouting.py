"""Re-routing: a referral the partner declined goes on to another partner as a new referral.

The declined one stays closed as it was (its history is the partner's answer); the new one is
launched through the same checks as any launch (service, area, consent, one open referral per
client and pathway), and each carries an event naming the other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.infra.context import Context
from referrals.models.codes import new_code
from referrals.models.errors import DomainError
from referrals.models.lifecycle import REROUTABLE, ReferralStatus
from referrals.models.people import Client, User, actor_name
from referrals.models.policy import require_referral
from referrals.models.workflow import Event, Referral
from referrals.usecases.referrals.advancing import get_referral
from referrals.usecases.referrals.launching import LaunchRequest, launch_one


def reroute(
    session: Session,
    *,
    code: str,
    partner: str,
    coordinator: User,
    ctx: Context,
    now: dt.datetime,
) -> str:
    """Launch the declined referral `code` again to `partner`; return the new referral's code."""
    old = get_referral(session, code, for_update=True)
    require_referral(
        coordinator, code=code, area_key=old.area_key, organization_id=old.organization_id
    )
    if ReferralStatus(old.status) not in REROUTABLE:
        raise DomainError(
            f"referral {code} is {old.status}; only a declined referral can be re-routed",
            key="not_reroutable",
            status=old.status,
        )
    client = session.get(Client, old.client_id)
    assert client is not None
    request = LaunchRequest(
        client_code=client.code,
        pathway=old.pathway_key,
        partner=partner,
        urgent=old.priority == "urgent",
    )
    new = launch_one(
        session, code=new_code("R"), request=request, coordinator=coordinator, ctx=ctx, now=now
    )
    new_id = session.scalars(select(col(Referral.id)).where(col(Referral.code) == new)).one()
    actor = actor_name(coordinator)
    session.add(
        Event(
            referral_id=old.id,
            kind="referral.rerouted",
            at=now,
            actor=actor,
            data={"to": new, "partner": partner},
        )
    )
    session.add(
        Event(
            referral_id=new_id,
            kind="referral.rerouted_from",
            at=now,
            actor=actor,
            data={"from": code},
        )
    )
    session.flush()
    return new
