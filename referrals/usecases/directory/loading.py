"""Loading the province's YAML into the directory tables (idempotent: run on every `init`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import delete, func, insert
from sqlmodel import Session, col, select

from referrals.config import ConfigError, Province
from referrals.config.fields import reachable
from referrals.models.directory import (
    Area,
    AreaSuccessor,
    Contact,
    Location,
    Organization,
    OrganizationSuccessor,
    Service,
    ServiceArea,
    ServiceLocation,
)
from referrals.models.people import Client
from referrals.models.workflow import PathwayVersion, Referral

if TYPE_CHECKING:
    from referrals.config.province import Partner

T = TypeVar("T", Location, Service, Contact)  # a partner's rows, each with an `active` switch


def _successions(session: Session, province: Province) -> None:
    """The YAML's successors, as rows: those of the areas it lists are replaced."""
    listed = [a.key for a in province.province.areas]
    for old in session.exec(select(AreaSuccessor).where(col(AreaSuccessor.area_key).in_(listed))):
        session.delete(old)
    session.flush()
    session.add_all(
        AreaSuccessor(area_key=a.key, successor_key=s)
        for a in province.province.areas
        for s in a.successors
    )
    session.flush()


def _refuse_new_meanings(session: Session, province: Province, areas: dict[str, Area]) -> None:
    """Refuse a config that makes an area key another kind of unit (a district a ward) under
    existing records: they would silently count under the new unit. Before the 2025 reform the
    bundled `nha-trang` was the city; it is now Phường Nha Trang (README, "Areas across the 2025
    reform")."""
    problems = []
    for area in province.province.areas:
        old = areas.get(area.key)
        if old is None or not old.level or old.level == area.level:
            continue
        used = {
            table.__tablename__: session.scalar(
                select(func.count()).select_from(table).where(col(table.area_key) == area.key)
            )
            or 0
            for table in (Client, Referral)
        }
        if any(used.values()):
            problems.append(
                f"{area.key!r} would change from {old.level} {old.name!r} to {area.level} "
                f"{area.name!r} under {used['client']} clients and {used['referral']} referrals"
            )
    if problems:
        raise ConfigError(
            "; ".join(problems) + ": keep the meaning your records have in your own copy of the "
            "config (REFERRALS_CONFIG_DIR), as README's 'Areas across the 2025 reform' says"
        )


def _partner_successions(session: Session, province: Province) -> None:
    """The YAML's partner successors, as rows: those of the partners it lists are replaced."""
    ids = {o.slug: o.id for o in session.exec(select(Organization)) if o.id is not None}
    listed = [ids[p.slug] for p in province.partners]
    query = select(OrganizationSuccessor).where(
        col(OrganizationSuccessor.organization_id).in_(listed)
    )
    for old in session.exec(query):
        session.delete(old)
    session.flush()
    session.add_all(
        OrganizationSuccessor(organization_id=ids[p.slug], successor_id=ids[s])
        for p in province.partners
        for s in p.successors
    )
    session.flush()


def load_province_data(session: Session, *, province: Province) -> dict[str, int]:
    """Upsert areas, partners, services, contacts; add a pathway version when a template changed.

    Nothing is deleted: partners, services and contacts that left the YAML are deactivated, so
    history keeps pointing at them.
    """
    counts = {"areas": 0, "partners": 0, "contacts": 0, "pathway_versions": 0}
    areas = {a.key: a for a in session.exec(select(Area))}
    _refuse_new_meanings(session, province, areas)
    parents = {a.key: a.parent for a in province.province.areas}

    def depth(key: str | None) -> int:  # parents first: a ward's row points at its district's
        return 0 if key is None or key not in parents else 1 + depth(parents[key])

    for area in sorted(province.province.areas, key=lambda a: depth(a.parent)):
        row = areas.get(area.key) or Area(key=area.key, name="", name_en="", level="")
        row.name, row.name_en, row.level, row.parent_key = (
            area.name,
            area.name_en,
            area.level,
            area.parent,
        )
        row.valid_from, row.valid_to = area.valid_from, area.valid_to
        session.add(row)
        counts["areas"] += 1
    session.flush()
    _successions(session, province)

    orgs = {o.slug: o for o in session.exec(select(Organization))}
    for org in orgs.values():
        org.active = False
    for partner in province.partners:
        org = orgs.get(partner.slug) or Organization(
            slug=partner.slug, name="", name_en="", kind=""
        )
        org.name, org.name_en, org.kind, org.active = (
            partner.name,
            partner.name_en,
            partner.kind,
            True,
        )
        org.valid_from, org.valid_to = partner.valid_from, partner.valid_to
        session.add(org)
        session.flush()
        assert org.id is not None  # flushed: the database gave it its id
        places = _load_locations(session, org.id, partner)
        _load_services(session, org.id, partner, places, province.area_scopes)
        _load_contacts(session, org.id, partner, province.province.delivery.order)
        counts["partners"] += 1
        counts["contacts"] += len(partner.contacts)
    _partner_successions(session, province)

    latest: dict[str, PathwayVersion] = {}
    for pv in session.exec(select(PathwayVersion).order_by(col(PathwayVersion.version))):
        latest[pv.key] = pv
    for pathway in province.pathways:
        current = latest.get(pathway.key)
        if current is None or current.digest != pathway.digest:
            session.add(
                PathwayVersion(
                    key=pathway.key,
                    version=(current.version + 1) if current else 1,
                    digest=pathway.digest,
                    name=pathway.name,
                    name_en=pathway.name_en,
                    definition=pathway.model_dump(mode="json"),
                )
            )
            counts["pathway_versions"] += 1
    session.flush()
    return counts


def _deactivated(session: Session, model: type[T], org_id: int, key: str) -> dict[str, T]:
    """The partner's rows of `model` by `key`, all marked inactive: loading turns back on
    those the YAML still names, so the ones it no longer names stay off."""
    rows = {
        getattr(row, key): row
        for row in session.exec(select(model).where(col(model.organization_id) == org_id))
    }
    for row in rows.values():
        row.active = False
    return rows


def _load_locations(session: Session, org_id: int, partner: Partner) -> dict[str, int]:
    """Upsert the partner's locations by key; the ones gone from the YAML are deactivated."""
    existing = _deactivated(session, Location, org_id, "key")
    for place in partner.locations:
        row = existing.get(place.key) or Location(
            organization_id=org_id, key=place.key, name="", address="", area_key=place.area
        )
        row.name, row.address, row.area_key = place.name, place.address, place.area
        row.postal_code, row.active = place.postal_code, True
        row.hours = [h.model_dump(mode="json") for h in place.hours]
        session.add(row)
        existing[place.key] = row
    session.flush()
    return {key: row.id for key, row in existing.items() if row.active and row.id is not None}


def _load_services(
    session: Session,
    org_id: int,
    partner: Partner,
    places: dict[str, int],
    scopes: dict[str, frozenset[str]],
) -> None:
    """Upsert the partner's services; each serves the areas it lists and every area within
    them or after them (config/areas.py `covered`): a service of the province serves each of
    its wards, one of a district that ended serves the wards that replaced it."""
    existing = _deactivated(session, Service, org_id, "pathway_key")
    for svc in partner.services:
        row = existing.get(svc.pathway) or Service(
            organization_id=org_id, pathway_key=svc.pathway, name="", name_en=""
        )
        row.name, row.name_en, row.active = svc.name, svc.name_en, True
        row.valid_from, row.valid_to = svc.valid_from, svc.valid_to
        session.add(row)
        session.flush()
        assert row.id is not None  # flushed: the database gave it its id
        # The links as plain rows, in one statement each way: a provincial service serves a
        # hundred areas once the reform's are listed, and the tests load the directory often.
        for table in (ServiceArea, ServiceLocation):
            session.execute(delete(table).where(col(table.service_id) == row.id))
        served = sorted(set().union(*(scopes.get(a, frozenset({a})) for a in svc.areas)))
        session.execute(
            insert(ServiceArea), [{"service_id": row.id, "area_key": a} for a in served]
        )
        if svc.locations:
            session.execute(
                insert(ServiceLocation),
                [{"service_id": row.id, "location_id": places[k]} for k in svc.locations],
            )
    session.flush()


def _load_contacts(session: Session, org_id: int, partner: Partner, order: Sequence[str]) -> None:
    """Each contact with its channels in the order they are tried: its own, else the province's
    (`delivery.order`), keeping those it has an address for (notifiers/addressing.py)."""
    existing = _deactivated(session, Contact, org_id, "name")
    for c in partner.contacts:
        row = existing.get(c.name) or Contact(organization_id=org_id, name=c.name, role="")
        for field in (
            "role",
            "phone",
            "email",
            "language",
            "rank",
            "sms_unaccented",
            "quiet_hours",
            "active",
            "valid_from",
            "valid_to",
        ):
            setattr(row, field, getattr(c, field))
        row.channels = reachable(c.channels or order, phone=c.phone, email=c.email)
        row.active = row.active and row.deactivated_at is None
        session.add(row)
