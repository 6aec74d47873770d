"""Read models of the directory and the pathway templates, for `partners` and `pathways`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.config.areas import in_force
from referrals.config.province import DueRule
from referrals.models.directory import (
    Area,
    Contact,
    Location,
    Organization,
    OrganizationSuccessor,
    Service,
    ServiceArea,
    ServiceLocation,
)
from referrals.models.workflow import PathwayVersion


def directory(session: Session, on: dt.date | None = None) -> list[dict[str, Any]]:
    """The partners with their services, places and contacts; with ON, only what is in force
    that day (partners, services, contacts, and the areas a service serves), else everything
    the YAML names, each with its dates and successors (partners.yaml)."""
    current = (lambda row: in_force(row, on)) if on else (lambda row: True)
    orgs = [
        o
        for o in session.scalars(
            select(Organization).where(col(Organization.active)).order_by(col(Organization.slug))
        )
        if current(o)
    ]
    services = [
        s
        for s in session.scalars(
            select(Service).where(col(Service.active)).order_by(col(Service.pathway_key))
        )
        if current(s)
    ]
    slugs = {o.id: o.slug for o in session.scalars(select(Organization))}
    after: dict[int, list[str]] = {}
    ordered = select(OrganizationSuccessor).order_by(col(OrganizationSuccessor.successor_id))
    for succession in session.scalars(ordered):  # rows made in the YAML's order
        after.setdefault(succession.organization_id, []).append(slugs[succession.successor_id])
    in_place = {a.key for a in session.scalars(select(Area)) if current(a)}
    # Keyed like the rows' ids (`int | None` on the models; never None once stored).
    areas: dict[int | None, list[str]] = {}
    for link in session.scalars(select(ServiceArea).order_by(col(ServiceArea.area_key))):
        if link.area_key in in_place:
            areas.setdefault(link.service_id, []).append(link.area_key)
    contacts = [
        c
        for c in session.scalars(select(Contact).order_by(col(Contact.rank), col(Contact.id)))
        if current(c)
    ]
    places = {
        p.id: p
        for p in session.scalars(
            select(Location).where(col(Location.active)).order_by(col(Location.id))
        )
    }
    at: dict[int | None, list[str]] = {}
    for placed in session.scalars(
        select(ServiceLocation).order_by(col(ServiceLocation.location_id))
    ):
        if placed.location_id in places:
            at.setdefault(placed.service_id, []).append(places[placed.location_id].key)
    return [
        {
            "slug": o.slug,
            "name": o.name,
            "name_en": o.name_en,
            "kind": o.kind,
            "valid_from": o.valid_from.isoformat() if o.valid_from else None,
            "valid_to": o.valid_to.isoformat() if o.valid_to else None,
            "successors": after.get(o.id or 0, []),
            "services": [
                {
                    "pathway": s.pathway_key,
                    "name": s.name,
                    "name_en": s.name_en,
                    "areas": areas.get(s.id, []),
                    "locations": at.get(s.id, []),
                    "capacity": s.capacity,
                }
                for s in services
                if s.organization_id == o.id
            ],
            "locations": [
                {
                    "key": p.key,
                    "name": p.name,
                    "address": p.address,
                    "area": p.area_key,
                    "postal_code": p.postal_code,
                    "hours": p.hours,
                }
                for p in places.values()
                if p.organization_id == o.id
            ],
            "contacts": [
                {
                    "id": c.id,
                    "name": c.name,
                    "role": c.role,
                    "phone": c.phone,
                    "email": c.email,
                    "language": c.language,
                    "rank": c.rank,
                    "active": c.active,
                }
                for c in contacts
                if c.organization_id == o.id
            ],
        }
        for o in orgs
    ]


def pathway_templates(session: Session) -> list[dict[str, Any]]:
    latest: dict[str, PathwayVersion] = {}
    for pv in session.scalars(select(PathwayVersion).order_by(col(PathwayVersion.version))):
        latest[pv.key] = pv
    return [
        {
            "key": pv.key,
            "version": pv.version,
            "name": pv.name,
            "name_en": pv.name_en,
            "steps": [
                {
                    "key": s["key"],
                    "actor": s["actor"],
                    "name": s["name"],
                    "name_en": s["name_en"],
                    "due": DueRule.model_validate(s["due"]).describe(),
                    "due_rule": s["due"],
                    "urgent_due": s.get("urgent_due"),
                }
                for s in pv.definition["steps"]
            ],
        }
        for pv in sorted(latest.values(), key=lambda p: p.key)
    ]
