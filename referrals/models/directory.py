"""The partner directory, shaped after Open Referral HSDS: areas, organisations, services, contacts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from referrals.config.areas import in_force
from referrals.models.types import UTCDateTime, utcnow


class Area(SQLModel, table=True):
    """A place at a configurable level (district before the 2025 reform, ward/commune after),
    in force from `valid_from` to `valid_to` (both days included; None: open), as province.yaml
    says (config/areas.py). Records keep the area of the day they were made."""

    key: str = Field(primary_key=True, max_length=60)
    name: str
    name_en: str
    level: str = Field(max_length=20)
    parent_key: str | None = Field(default=None, foreign_key="area.key")
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    def in_force(self, on: dt.date) -> bool:
        return in_force(self, on)


class AreaSuccessor(SQLModel, table=True):
    """An area that took over (part of) an ended area's territory, from province.yaml."""

    __tablename__ = "area_successor"

    area_key: str = Field(foreign_key="area.key", primary_key=True, max_length=60)
    successor_key: str = Field(foreign_key="area.key", primary_key=True, max_length=60)


class Organization(SQLModel, table=True):
    """A partner, in force from `valid_from` to `valid_to` (both days included; None: open),
    as partners.yaml says; `active` is whether the YAML still names it at all."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=60)
    name: str
    name_en: str
    kind: str = Field(max_length=20)
    active: bool = True
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    def in_force(self, on: dt.date) -> bool:
        return in_force(self, on)


class OrganizationSuccessor(SQLModel, table=True):
    """A partner that took over (part of) an ended partner's work, from partners.yaml."""

    __tablename__ = "organization_successor"

    organization_id: int = Field(foreign_key="organization.id", primary_key=True)
    successor_id: int = Field(foreign_key="organization.id", primary_key=True)


class Service(SQLModel, table=True):
    """What an organisation offers for one pathway; `name` is the partner-facing, discreet name."""

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    pathway_key: str = Field(index=True, max_length=60)
    name: str
    name_en: str
    active: bool = True
    # What the partner last said of it from a link (usecases/referrals/answering.py): open, waitlist, full.
    capacity: str = Field(default="open", max_length=10)
    capacity_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    def in_force(self, on: dt.date) -> bool:
        return in_force(self, on)


class ServiceArea(SQLModel, table=True):
    service_id: int = Field(foreign_key="service.id", primary_key=True)
    area_key: str = Field(foreign_key="area.key", primary_key=True)


class Location(SQLModel, table=True):
    """Where a partner receives clients; `hours` is the YAML's list of {days, opens, closes}."""

    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    key: str = Field(max_length=60)
    name: str
    address: str
    area_key: str = Field(foreign_key="area.key")
    postal_code: str | None = Field(default=None, max_length=6)
    hours: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    active: bool = True


class ServiceLocation(SQLModel, table=True):
    """A service offered at a location (HSDS service_at_location)."""

    service_id: int = Field(foreign_key="service.id", primary_key=True)
    location_id: int = Field(foreign_key="location.id", primary_key=True)


class Contact(SQLModel, table=True):
    """A partner's staff member who receives prompts; `rank` orders escalation (1 first)."""

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    name: str
    role: str
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    language: str = Field(default="vi", max_length=5)
    rank: int = 1
    sms_unaccented: bool = False
    quiet_hours: str | None = Field(default=None, max_length=11)  # None: the province's
    # The channels to try, in order, one at a time (partners.yaml); None: the province's order.
    channels: list[str] | None = Field(default=None, sa_type=JSON)
    active: bool = True
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # An admin's decision (web admin page) that outlives re-loading the YAML: while set, the
    # contact stays inactive whatever the config says.
    deactivated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    deactivated_by: str | None = Field(default=None, max_length=80)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
