"""An HSDS 3.1 directory file in: checked whole against this province (its areas, pathways and
partners), mapped onto partners.yaml, with every problem named (`DirectoryError`)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from referrals.config.province import DAYS, PartnersFile, Province
from referrals.interop.hsds.schema import (
    InCapacity,
    InContact,
    InDirectory,
    InLocation,
    InOrganization,
    InPhone,
    InSchedule,
    InService,
)
from referrals.interop.hsds.shared import CAPACITY, hsds_id


class DirectoryError(ValueError):
    """The file is not a directory this province can take; the message lists every problem."""


@dataclass(frozen=True)
class Incoming:
    """A directory file read and checked: the partners.yaml it stands for, and the capacities
    its services last reported, as {(partner slug, pathway): (open|waitlist|full, when)}."""

    partners: PartnersFile
    capacities: dict[tuple[str, str], tuple[str, dt.datetime]]


def read_directory(
    data: object,
    *,
    province: Province,
    tz: dt.tzinfo,
    keep: dict[str, list[dict[str, Any]]] | None = None,
) -> Incoming:
    """Map an HSDS file onto this province's directory, or raise DirectoryError with every
    problem, each naming the HSDS object (its name and id).

    `keep` holds, per partner key, contacts to carry over when the file does not name them: the
    inactive ones, which an export leaves out."""
    try:
        directory = InDirectory.model_validate(data)
    except ValidationError as exc:
        raise DirectoryError("; ".join(_where(e) for e in exc.errors())) from None
    reader = _Reader(province, tz)
    partners = [reader.partner(o) for o in directory.organizations]
    by_id = {o.id: p for o, p in zip(directory.organizations, partners, strict=True)}
    capacities: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
    for s in directory.services:
        if s.status != "active":
            continue
        partner = by_id.get(s.organization_id or "")
        if partner is None:
            reader.problem(s, f"organization_id {s.organization_id!r} is not in the file")
            continue
        service = reader.service(s, partner)
        if service is not None:
            partner["services"].append(service)
            if s.capacities:
                latest = max(s.capacities, key=lambda c: c.updated)
                capacities[(partner["slug"], service["pathway"])] = (
                    _capacity(latest),
                    latest.updated.astimezone(dt.UTC),
                )
    if reader.problems:
        raise DirectoryError("; ".join(reader.problems))
    for p in partners:
        del p["locations_by_id"]
        named = {c["name"] for c in p["contacts"]}
        p["contacts"] += [c for c in (keep or {}).get(p["slug"], []) if c["name"] not in named]
    try:
        parsed = PartnersFile.model_validate({"partners": partners})
    except ValidationError as exc:
        raise DirectoryError("; ".join(_where(e, partners) for e in exc.errors())) from None
    return Incoming(partners=parsed, capacities=capacities)


class _Reader:
    """Collects problems rather than stopping at the first, so one run lists them all."""

    def __init__(self, province: Province, tz: dt.tzinfo) -> None:
        self.key, self.tz = province.province.key, tz
        self.areas = {a.key: a for a in province.province.areas}
        # A name as written (accents aside) first; then without the administrative word, unless
        # that makes two areas one (Thị xã Ninh Hòa and Phường Ninh Hòa).
        exact = {_ascii(n): a.key for a in self.areas.values() for n in (a.name, a.name_en, a.key)}
        loose: dict[str, set[str]] = {}
        for a in self.areas.values():
            for n in (a.name, a.name_en, a.key):
                loose.setdefault(_place(n), set()).add(a.key)
        self.loose = {k: v.pop() for k, v in loose.items() if len(v) == 1}
        self.ambiguous = {k for k, v in loose.items() if len(v) > 1}
        self.exact = exact
        self.known = {hsds_id(self.key, "organization", p.slug): p.slug for p in province.partners}
        self.pathways = {p.key for p in province.pathways}
        self.problems: list[str] = []

    def problem(self, obj: Any, message: str) -> None:
        kind = type(obj).__name__.removeprefix("In").lower()
        label = getattr(obj, "name", None) or ""
        self.problems.append(f"{kind} {label!r} ({obj.id}): {message}")

    def attrs(self, obj: Any) -> dict[str, str]:
        return {
            a.link_type.removeprefix("referrals_"): a.value or ""
            for a in obj.attributes
            if a.link_type.startswith("referrals_")
        }

    def area(self, name: str | None) -> str | None:
        """An area key from a name, or None (a problem is the caller's to word)."""
        if not name:
            return None
        return self.exact.get(_ascii(name)) or self.loose.get(_place(name))

    def partner(self, o: InOrganization) -> dict[str, Any]:
        prefix = f"urn:referrals:{self.key}:partner:"
        if o.uri and o.uri.startswith(prefix):
            slug = o.uri.removeprefix(prefix)
        else:
            slug = self.known.get(o.id) or _slug(o)
        kind = self.attrs(o).get("kind")
        if kind is None:
            self.problem(o, "no partner kind (an attribute with link_type referrals_kind)")
        phones: dict[str | None, list[InPhone]] = {}
        for phone in o.phones:
            phones.setdefault(phone.contact_id, []).append(phone)
        locations: dict[str, dict[str, Any] | None] = {}
        for loc in o.locations:
            if loc.id in locations:
                self.problem(loc, "two locations with this id")
            locations[loc.id] = self.location(loc)
        return {
            "slug": slug,
            "name": o.name,
            "name_en": o.alternate_name or o.name,
            "kind": kind,
            "locations": [loc for loc in locations.values() if loc],
            "locations_by_id": locations,
            "services": [],
            "contacts": [self.contact(c, c.phones or phones.get(c.id, [])) for c in o.contacts],
        }

    def contact(self, c: InContact, phones: list[InPhone]) -> dict[str, Any]:
        """The first phone that can take an SMS (not a fax, a pager or a landline by type)."""
        usable = [p for p in phones if (p.type or "cell").lower() in ("cell", "text", "sms")]
        settings = self.attrs(c)
        out: dict[str, Any] = {
            "name": c.name,
            "role": c.title or "Đầu mối liên hệ",
            "phone": usable[0].number if usable else None,
            "email": c.email,
        }
        for field in ("rank", "language", "quiet_hours"):
            if field in settings:
                out[field] = settings[field]
        if "sms_unaccented" in settings:
            out["sms_unaccented"] = settings["sms_unaccented"].lower() in ("true", "1", "yes")
        if settings.get("active", "").lower() == "false":
            out["active"] = False
        return out

    def location(self, loc: InLocation) -> dict[str, Any] | None:
        settings = self.attrs(loc)
        address = loc.addresses[0] if loc.addresses else None
        if address is None:
            self.problem(loc, "no address")
            return None
        area = settings.get("area") or self.area(address.city)
        if area not in self.areas:
            why = " (it names two areas)" if _place(address.city or "") in self.ambiguous else ""
            self.problem(loc, f"city {address.city!r} is not an area of this province{why}")
            return None
        return {
            "key": settings.get("key") or _slug(loc),
            "name": loc.name or address.address_1,
            "address": address.address_1,
            "area": area,
            "postal_code": address.postal_code or None,
            "hours": [h for h in (self.hours(loc, s) for s in loc.schedules) if h],
        }

    def hours(self, loc: InLocation, s: InSchedule) -> dict[str, Any] | None:
        """Weekly opening hours in local time; a schedule without times (a description alone)
        is left out, one we would misread (monthly, fortnightly) is a problem."""
        if not (s.byday and s.opens_at and s.closes_at):
            return None
        if (s.freq or "WEEKLY").upper() != "WEEKLY" or (s.interval or 1) != 1:
            self.problem(loc, "a schedule that is not every week (freq WEEKLY, interval 1)")
            return None
        days = [d.strip().upper() for d in s.byday.split(",")]
        opens, closes = self.time(s.opens_at), self.time(s.closes_at)
        if any(d not in DAYS for d in days) or opens is None or closes is None:
            self.problem(
                loc, f"schedule {s.byday} {s.opens_at}-{s.closes_at}: use MO..SU and HH:MM"
            )
            return None
        return {"days": days, "opens": opens, "closes": closes}

    def time(self, text: str) -> str | None:
        """`07:30`, `7:30`, `00:30Z` or `07:30+07:00` as local `HH:MM`."""
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?(Z|[+-]\d{2}:?\d{2})?", text.strip())
        if not m or int(m[1]) > 23 or int(m[2]) > 59:
            return None
        if m[3] is None:
            return f"{int(m[1]):02d}:{m[2]}"
        zone = dt.UTC if m[3] == "Z" else dt.datetime.strptime(m[3].replace(":", ""), "%z").tzinfo
        moment = dt.datetime.combine(dt.date(2026, 1, 5), dt.time(int(m[1]), int(m[2])), zone)
        return moment.astimezone(self.tz).strftime("%H:%M")

    def service(self, s: InService, partner: dict[str, Any]) -> dict[str, Any] | None:
        pathway = self.attrs(s).get("pathway")
        if pathway not in self.pathways:
            self.problem(
                s,
                f"pathway {pathway!r} is not one of this province's"
                if pathway
                else "no pathway (an attribute with link_type referrals_pathway)",
            )
            return None
        areas = []
        prefix = f"urn:referrals:{self.key}:area:"
        for a in s.service_areas:
            uri = a.uri or ""
            key = uri.removeprefix(prefix) if uri.startswith(prefix) else self.area(a.name)
            if key not in self.areas:
                self.problem(s, f"service area {a.name or a.uri!r} is not an area of this province")
                continue
            areas.append(key)
        places = partner["locations_by_id"]
        keys = []
        for sal in s.service_at_locations:
            if sal.location is not None and sal.location.id not in places:  # nested, not listed
                places[sal.location.id] = place = self.location(sal.location)
                if place:
                    partner["locations"].append(place)
            lid = sal.location_id or (sal.location.id if sal.location else None)
            if lid not in places:
                self.problem(s, f"location {lid!r} is not one of its organization's")
            elif place := places[lid]:
                keys.append(place["key"])
        return {
            "pathway": pathway,
            "name": s.name,
            "name_en": s.alternate_name or s.name,
            "areas": list(dict.fromkeys(areas)),
            "locations": list(dict.fromkeys(keys)),
        }


def _capacity(c: InCapacity) -> str:
    for state in CAPACITY:
        if c.description and f"({state})" in c.description:
            return state
    return "open" if c.available > 0 else "full"


def _slug(obj: Any) -> str:
    """A key from a foreign object's name (Vietnamese accents dropped)."""
    slug = _ascii(obj.name or obj.id)[:60].strip("-")
    return slug if slug[:1].isalpha() else f"p-{slug}"[:60]


def _ascii(text: str) -> str:
    """`Thị xã Ninh Hòa` -> `thi-xa-ninh-hoa`."""
    import unicodedata

    text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in text if not unicodedata.combining(ch))
    plain = plain.encode("ascii", "ignore").decode().lower()
    return "-".join("".join(ch if ch.isalnum() else " " for ch in plain).split())


ADMINISTRATIVE = re.compile(
    r"^(thanh-pho|thi-xa|thi-tran|huyen|quan|phuong|xa|tinh)-|-(city|town|district|ward|commune|province)$"
)


def _place(name: str) -> str:
    """An area's name as other tools may write it: `Ninh Hòa`, `Thị xã Ninh Hòa`, `Ninh Hoa Town`
    all give `ninh-hoa`."""
    return ADMINISTRATIVE.sub("", _ascii(name))


def _where(error: Any, partners: list[dict[str, Any]] | None = None) -> str:
    """A pydantic error as `organization 'name' contacts.1.phone: message`."""
    loc = list(error["loc"])
    label = ""
    if partners is not None and len(loc) >= 2 and isinstance(loc[1], int):
        label = f"organization {partners[loc[1]]['name']!r} "
        loc = loc[2:]
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{label}{'.'.join(str(p) for p in loc) or 'file'}: {message}"
