"""Our partner directory out as HSDS 3.1 JSON: organisations with their contacts and locations,
services with their areas, locations and capacity (the format is described in `hsds/__init__.py`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.config.areas import in_force
from referrals.config.province import Hours, Province
from referrals.interop.hsds.shared import CAPACITY, HSDS_VERSION, UNIT, hsds_id, urn
from referrals.models.directory import (
    Area,
    Contact,
    Location,
    Organization,
    Service,
    ServiceArea,
    ServiceLocation,
)


def export_directory(
    session: Session, *, province: Province, tz: dt.tzinfo, now: dt.datetime
) -> dict[str, Any]:
    """The active directory as HSDS 3.1, as it is today: partners, services, contacts and
    service areas in force (an ended partner or district is history, not a place to refer to);
    opening hours carry `tz`'s UTC offset at `now`."""
    offset = now.astimezone(tz).utcoffset() or dt.timedelta()
    today = now.astimezone(tz).date()
    key = province.province.key
    areas = {a.key: a for a in session.scalars(select(Area))}
    orgs = [
        o
        for o in session.scalars(
            select(Organization).where(col(Organization.active)).order_by(col(Organization.id))
        )
        if o.in_force(today)
    ]
    org_ids = {o.id: hsds_id(key, "organization", o.slug) for o in orgs}
    places_of, place_ids = _places(session, key, {o.id: o.slug for o in orgs})
    contacts_of = _contacts(session, today)
    organizations = [
        _organization(
            key,
            o,
            org_ids[o.id],
            contacts=[_contact(key, org_ids[o.id], o.slug, c) for c in contacts_of.get(o.id, [])],
            locations=[
                _location(key, org_ids[o.id], place_ids[p.id], p, areas, province, offset)
                for p in places_of.get(o.id, [])
            ],
        )
        for o in orgs
    ]
    services = _services(session, key, orgs, org_ids, place_ids, areas, tz, today)
    return {
        "hsds_version": HSDS_VERSION,
        "publisher": {"name": province.province.name, "uri": urn(key, "province", key)},
        "exported_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "organizations": organizations,
        "services": services,
    }


def _attr(province: str, entity: str, owner: str, link_type: str, value: object) -> dict[str, Any]:
    return {
        "id": hsds_id(province, "attribute", owner, link_type),
        "link_id": owner,
        "link_entity": entity,
        "link_type": f"referrals_{link_type}",
        "value": str(value),
    }


# --- organisations ------------------------------------------------------------------------


def _places(
    session: Session, province: str, slugs: dict[int | None, str]
) -> tuple[dict[int | None, list[Location]], dict[int | None, str]]:
    """The active locations of the exported partners (`slugs`, by row id), by partner, and
    their HSDS ids by row id."""
    places = {
        p.id: p
        for p in session.scalars(
            select(Location).where(col(Location.active)).order_by(col(Location.id))
        )
        if p.organization_id in slugs
    }
    place_ids = {
        p.id: hsds_id(province, "location", slugs[p.organization_id], p.key)
        for p in places.values()
    }
    # Keyed like the rows' ids (`int | None` on the models; never None once stored).
    places_of: dict[int | None, list[Location]] = {}
    for place in places.values():
        places_of.setdefault(place.organization_id, []).append(place)
    return places_of, place_ids


def _contacts(session: Session, today: dt.date) -> dict[int | None, list[Contact]]:
    """The active contacts in force today, by partner row id, in id order."""
    contacts_of: dict[int | None, list[Contact]] = {}
    for c in session.scalars(select(Contact).where(col(Contact.active)).order_by(col(Contact.id))):
        if in_force(c, today):
            contacts_of.setdefault(c.organization_id, []).append(c)
    return contacts_of


def _organization(
    province: str,
    o: Organization,
    oid: str,
    *,
    contacts: list[dict[str, Any]],
    locations: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "id": oid,
        "name": o.name,
        "alternate_name": o.name_en,
        "description": "",
        "uri": urn(province, "partner", o.slug),
        "additional_websites": [],
        "contacts": contacts,
        "locations": locations,
        "attributes": [_attr(province, "organization", oid, "kind", o.kind)],
    }


def _contact(province: str, org_id: str, slug: str, c: Contact) -> dict[str, Any]:
    cid = hsds_id(province, "contact", slug, c.name)
    phones = [
        {
            "id": hsds_id(province, "phone", cid),
            "contact_id": cid,
            "number": c.phone,
            "type": "cell" if _mobile(c.phone) else "voice",
        }
    ]
    settings = {"rank": c.rank, "language": c.language, "sms_unaccented": c.sms_unaccented}
    if c.quiet_hours:
        settings["quiet_hours"] = c.quiet_hours
    return {
        "id": cid,
        "organization_id": org_id,
        "name": c.name,
        "title": c.role,
        **({"email": c.email} if c.email else {}),
        "phones": phones if c.phone else [],
        "attributes": [_attr(province, "contact", cid, k, v) for k, v in settings.items()],
    }


def _location(
    province: str,
    org_id: str,
    lid: str,
    p: Location,
    areas: dict[str, Area],
    config: Province,
    offset: dt.timedelta,
) -> dict[str, Any]:
    zone = _utc_offset(offset)
    return {
        "id": lid,
        "organization_id": org_id,
        "location_type": "physical",
        "name": p.name,
        "addresses": [
            {
                "id": hsds_id(province, "address", lid),
                "location_id": lid,
                "address_1": p.address,
                "city": areas[p.area_key].name,
                "state_province": config.province.name,
                "postal_code": p.postal_code or "",
                "country": config.province.country,
                "address_type": "physical",
            }
        ],
        "schedules": [
            {
                "id": hsds_id(province, "schedule", lid, i),
                "location_id": lid,
                "freq": "WEEKLY",
                "byday": ",".join(h["days"]),
                "opens_at": f"{h['opens']}{zone}",
                "closes_at": f"{h['closes']}{zone}",
                "timezone": _hours(offset),
                "description": Hours.model_validate(h).describe("vi"),
            }
            for i, h in enumerate(p.hours)
        ],
        "attributes": [
            _attr(province, "location", lid, "key", p.key),
            _attr(province, "location", lid, "area", p.area_key),
        ],
    }


def _mobile(e164: str | None) -> bool:
    import phonenumbers

    if not e164:
        return False
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _hours(offset: dt.timedelta) -> int | float:
    hours = offset.total_seconds() / 3600
    return int(hours) if hours.is_integer() else hours


def _utc_offset(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- services -----------------------------------------------------------------------------


def _services(
    session: Session,
    province: str,
    orgs: list[Organization],
    org_ids: dict[int | None, str],
    place_ids: dict[int | None, str],
    areas: dict[str, Area],
    tz: dt.tzinfo,
    today: dt.date,
) -> list[dict[str, Any]]:
    """The active services in force today of the exported partners, with their areas in force
    today, locations and capacity."""
    services = []
    by_org = {o.id: o for o in orgs}
    served: dict[int | None, list[str]] = {}
    for link in session.scalars(select(ServiceArea).order_by(col(ServiceArea.area_key))):
        if areas[link.area_key].in_force(today):
            served.setdefault(link.service_id, []).append(link.area_key)
    at: dict[int | None, list[int]] = {}
    for sl in session.scalars(select(ServiceLocation)):
        at.setdefault(sl.service_id, []).append(sl.location_id)
    for s in session.scalars(
        select(Service)
        .where(col(Service.active), col(Service.organization_id).in_(list(by_org)))
        .order_by(col(Service.id))
    ):
        if not s.in_force(today):
            continue
        org = by_org[s.organization_id]
        sid = hsds_id(province, "service", org.slug, s.pathway_key)
        services.append(
            {
                "id": sid,
                "organization_id": org_ids[org.id],
                "name": s.name,
                "alternate_name": s.name_en,
                "status": "active",
                "additional_urls": [],
                "service_areas": _service_areas(province, sid, served.get(s.id, []), areas),
                "service_at_locations": _service_at_locations(
                    province, sid, at.get(s.id, []), place_ids
                ),
                "capacities": _capacities(province, sid, s, tz),
                "attributes": [_attr(province, "service", sid, "pathway", s.pathway_key)],
            }
        )
    return services


def _service_areas(
    province: str, sid: str, keys: list[str], areas: dict[str, Area]
) -> list[dict[str, Any]]:
    return [
        {
            "id": hsds_id(province, "service_area", sid, a),
            "service_id": sid,
            "name": areas[a].name,
            "uri": urn(province, "area", a),
        }
        for a in keys
    ]


def _service_at_locations(
    province: str, sid: str, location_ids: list[int], place_ids: dict[int | None, str]
) -> list[dict[str, Any]]:
    """The service's places among the exported (active) locations, in row id order."""
    return [
        {
            "id": hsds_id(province, "service_at_location", sid, place_ids[loc]),
            "service_id": sid,
            "location_id": place_ids[loc],
        }
        for loc in sorted(location_ids)
        if loc in place_ids
    ]


def _capacities(province: str, sid: str, s: Service, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """The day of the partner's last word, not its minute: that was the moment one contact
    answered about one client's referral, which a small service's export should not tell."""
    if s.capacity_at is None:
        return []
    day = dt.datetime.combine(s.capacity_at.astimezone(tz).date(), dt.time(), tz)
    return [
        {
            "id": hsds_id(province, "service_capacity", sid),
            "service_id": sid,
            "unit": {"id": hsds_id(province, "unit", "place"), **UNIT},
            "available": 1 if s.capacity == "open" else 0,
            "description": CAPACITY[s.capacity],
            "updated": day.isoformat(timespec="milliseconds"),
        }
    ]
