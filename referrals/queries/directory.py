"""Read models of the directory and the pathway templates, for `partners` and `pathways`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.config.province import DueRule
from referrals.models.directory import (
    Contact,
    Location,
    Organization,
    Service,
    ServiceArea,
    ServiceLocation,
)
from referrals.models.workflow import PathwayVersion


def directory(session: Session) -> list[dict[str, Any]]:
    orgs = list(
        session.scalars(
            select(Organization).where(col(Organization.active)).order_by(col(Organization.slug))
        )
    )
    services = list(
        session.scalars(
            select(Service).where(col(Service.active)).order_by(col(Service.pathway_key))
        )
    )
    # Keyed like the rows' ids (`int | None` on the models; never None once stored).
    areas: dict[int | None, list[str]] = {}
    for link in session.scalars(select(ServiceArea).order_by(col(ServiceArea.area_key))):
        areas.setdefault(link.service_id, []).append(link.area_key)
    contacts = list(session.scalars(select(Contact).order_by(col(Contact.rank), col(Contact.id))))
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
