"""The staff pages' one launch form (web/launching.py): what it may offer a client, the consent
given on it, and a new client registered and referred together.

`launch_choices` reads the offers with the launch's own rule for who serves a client's district
(usecases/referrals/launching.py `_served`), so the form lists exactly what a launch accepts.
`register_and_launch` and the consent given here (`launch_one(consent=...)`) are recorded in the
launch's own transaction: a refused launch leaves neither a consent nor a new client behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.infra.context import Context
from referrals.models.directory import Area, Organization, Service, ServiceArea
from referrals.models.errors import DomainError
from referrals.models.people import Client, Consent, ConsentMethod, User
from referrals.models.policy import area_scope, district_scope
from referrals.models.workflow import PathwayVersion
from referrals.usecases.clients.clients import ClientIn, add_client, client_for
from referrals.usecases.referrals.launching import LaunchRequest, launch_one


def consent_given(agreed: bool, method: ConsentMethod | None) -> ConsentMethod | None:
    """What the launch form's consent fields record: nothing unless "the client agreed" is
    ticked (choosing how, alone, is not an agreement), and then how they agreed, which the
    consent must say."""
    if not agreed:
        return None
    if method is None:
        raise DomainError(
            "say how the client consented: written or verbal", key="consent_method_missing"
        )
    return method


def register_and_launch(
    session: Session,
    *,
    code: str,
    client: ClientIn,
    request: LaunchRequest,
    coordinator: User,
    ctx: Context,
    now: dt.datetime,
    consent: ConsentMethod | None = None,
) -> str:
    """A new client and their first referral in one transaction (the form for someone who is
    not yet a client): returns the client's code. Every rule of `add_client` (a known phone or
    ID number is refused as `SamePerson`, naming who has it) and of `launch_one` holds; the
    request's client code is replaced by the new client's. A refused launch rolls the client
    back with it: no half-registered person is left to find later."""
    new = add_client(session, data=client, ctx=ctx, created_by=coordinator, now=now)
    launch_one(
        session,
        code=code,
        request=request.model_copy(update={"client_code": new.code}),
        coordinator=coordinator,
        ctx=ctx,
        now=now,
        consent=consent,
    )
    return new.code


@dataclass(frozen=True)
class Offer:
    """A partner a launch form may offer: it offers `pathway` in `areas` (those of the form's
    that it serves), as `_served` asks. One per partner and service, however many areas: a
    provincial partner serves all 65 units of 2025, and was one line for each."""

    partner: str  # the partner's slug: a form's value, never shown
    name: str
    name_en: str
    pathway: str
    areas: tuple[str, ...]
    capacity: str  # open, waitlist or full: what the partner last said


@dataclass(frozen=True)
class ServiceChoice:
    """A service (pathway) at its latest version, and what it shares of the client with the
    partner while the client's consent stands (name, phone, id_number)."""

    key: str
    name: str
    name_en: str
    shares: tuple[str, ...]


@dataclass
class LaunchChoices:
    """What the launch form offers: the client (None for a new one), the services someone
    offers in the districts concerned, who offers them, and the (partner, pathway) pairs the
    client's consent covers now (the form asks for consent on the others)."""

    client: Client | None
    areas: list[Area]
    services: list[ServiceChoice]
    offers: list[Offer]
    consented: set[tuple[str, str]]


def launch_choices(
    session: Session, *, by: User, client_code: str | None, now: dt.datetime, tz: ZoneInfo
) -> LaunchChoices:
    """For an existing client, their district's offers (a client `by` may not see is not found);
    for a new one, those of `by`'s district, or of every district in force today for a user who
    has none (a new client is recorded under a unit of the day: clients.require_area)."""
    client = client_for(session, by, client_code, act=False) if client_code else None
    scope = client.area_key if client else district_scope(by)
    query = select(Area).order_by(col(Area.name))
    # A new client of a coordinator whose district ended is recorded under the units that
    # replaced it (policy.area_scope), the units in force today below.
    within = [scope] if client else sorted(area_scope(scope)) if scope else None
    areas = list(session.scalars(query.where(col(Area.key).in_(within)) if within else query))
    today = now.astimezone(tz).date()
    if client is None:
        areas = [a for a in areas if a.in_force(today)]
    offers = _offers(session, [a.key for a in areas], today)
    offered = {o.pathway for o in offers}
    services = [s for s in _services(session) if s.key in offered]
    consented = _consented(session, client, now) if client else set()
    return LaunchChoices(client, areas, services, offers, consented)


def _offers(session: Session, areas: list[str], today: dt.date) -> list[Offer]:
    """Active partners' active services serving `areas`, both in force today: the pairs
    `_served` accepts."""
    rows = session.execute(
        select(Organization, Service, col(ServiceArea.area_key))
        .join(Service, col(Service.organization_id) == col(Organization.id))
        .join(ServiceArea, col(ServiceArea.service_id) == col(Service.id))
        .where(
            col(Organization.active),
            col(Service.active),
            col(ServiceArea.area_key).in_(areas),
        )
        .order_by(col(Organization.name), col(Service.pathway_key), col(ServiceArea.area_key))
    ).tuples()
    served: dict[tuple[int | None, int | None], list[str]] = {}
    found: dict[tuple[int | None, int | None], tuple[Organization, Service]] = {}
    for org, service, area in rows:
        if org.in_force(today) and service.in_force(today):
            served.setdefault((org.id, service.id), []).append(area)
            found[org.id, service.id] = (org, service)
    return [
        Offer(org.slug, org.name, org.name_en, service.pathway_key, tuple(areas), service.capacity)
        for (org, service), areas in ((found[k], v) for k, v in served.items())
    ]


def _services(session: Session) -> list[ServiceChoice]:
    """Each pathway at its latest version, by its Vietnamese name."""
    latest: dict[str, PathwayVersion] = {}
    for pv in session.scalars(select(PathwayVersion).order_by(col(PathwayVersion.version))):
        latest[pv.key] = pv
    return [
        ServiceChoice(p.key, p.name, p.name_en, tuple(p.definition.get("shares") or ()))
        for p in sorted(latest.values(), key=lambda p: p.name)
    ]


def _consented(session: Session, client: Client, now: dt.datetime) -> set[tuple[str, str]]:
    """(partner, pathway) pairs the client's consent covers at `now` (`_require_consent`)."""
    rows = session.execute(
        select(col(Organization.slug), col(Consent.purpose))
        .join(Organization, col(Organization.id) == col(Consent.organization_id))
        .where(
            col(Consent.client_id) == client.id,
            col(Consent.granted_at) <= now,
            col(Consent.withdrawn_at).is_(None) | (col(Consent.withdrawn_at) > now),
        )
    ).tuples()
    return set(rows)
