"""What we read of an HSDS 3.1 directory file: pydantic models of the objects and the fields the
import uses. Fields we do not use are ignored, not refused, so a richer file still reads."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict


class _In(BaseModel):
    """What we read of an HSDS object; the fields we do not use are ignored, not refused."""

    model_config = ConfigDict(extra="ignore")


class InAttribute(_In):
    link_type: str = ""  # HSDS requires only an id; taxonomy attributes often have no link_type
    value: str | None = None


class InPhone(_In):
    number: str
    type: str | None = None
    contact_id: str | None = None


class InContact(_In):
    id: str
    name: str | None = None
    title: str | None = None
    email: str | None = None
    phones: list[InPhone] = []
    attributes: list[InAttribute] = []


class InAddress(_In):
    address_1: str
    city: str | None = None
    postal_code: str | None = None


class InSchedule(_In):
    freq: str | None = None
    interval: float | None = None
    byday: str | None = None
    opens_at: str | None = None
    closes_at: str | None = None


class InLocation(_In):
    id: str
    name: str | None = None
    addresses: list[InAddress] = []
    schedules: list[InSchedule] = []
    attributes: list[InAttribute] = []


class InOrganization(_In):
    id: str
    name: str
    alternate_name: str | None = None
    uri: str | None = None
    contacts: list[InContact] = []
    phones: list[InPhone] = []
    locations: list[InLocation] = []
    attributes: list[InAttribute] = []


class InServiceArea(_In):
    name: str | None = None
    uri: str | None = None


class InServiceAtLocation(_In):
    location_id: str | None = None
    location: InLocation | None = None


class InCapacity(_In):
    available: float
    description: str | None = None
    updated: AwareDatetime


class InService(_In):
    id: str
    organization_id: str | None = None
    name: str
    alternate_name: str | None = None
    status: str
    service_areas: list[InServiceArea] = []
    service_at_locations: list[InServiceAtLocation] = []
    capacities: list[InCapacity] = []
    attributes: list[InAttribute] = []


class InDirectory(_In):
    organizations: list[InOrganization]
    services: list[InService] = []
