"""The partner directory's entries (partners.yaml): contacts, services, locations and their
opening hours (re-exported by referrals.config.province)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_serializer, field_validator, model_validator

from referrals.config.fields import (
    Channel,
    Email,
    Key,
    Phone,
    QuietHours,
    Slug,
    Strict,
    Text,
    reachable,
)


class Contact(Strict):
    name: Text
    role: Text
    phone: Phone | None = None
    email: Email | None = None
    language: Literal["vi", "en"] = "vi"
    rank: int = Field(default=1, ge=1, le=9, description="escalation rank: 1 is asked first")
    sms_unaccented: bool = False
    quiet_hours: QuietHours | None = Field(
        default=None, description="no SMS in these local hours; default: the province's"
    )
    active: bool = True
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    channels: list[Channel] | None = Field(
        default=None,
        min_length=1,
        description="the channels to try, in order, one at a time; default: the province's",
    )

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not (self.phone or self.email):
            raise ValueError("a contact needs a phone or an e-mail")
        if self.channels is not None:
            if len(set(self.channels)) < len(self.channels):
                raise ValueError(f"channels repeat one: {', '.join(self.channels)}")
            if not reachable(self.channels, phone=self.phone, email=self.email):
                raise ValueError("none of the contact's channels has an address (phone, e-mail)")
        return self


class Service(Strict):
    pathway: Key
    name: Text = Field(description="partner-facing name: must not reveal the client's situation")
    name_en: Text
    areas: list[Slug] = Field(min_length=1)
    locations: list[Slug] = Field(default=[], description="keys of the partner's locations")
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @field_validator("areas", "locations")
    @classmethod
    def _no_repeats(cls, keys: list[str]) -> list[str]:
        if dupes := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"repeats {', '.join(dupes)}")
        return keys


Day = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
DAYS: tuple[Day, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = {
    "vi": dict(zip(DAYS, ("T2", "T3", "T4", "T5", "T6", "T7", "CN"), strict=True)),
    "en": dict(zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True)),
}


class Hours(Strict):
    """One opening session, local time: `days: [MO, TU]`, `opens: "07:30"`, `closes: "11:30"`."""

    days: list[Day] = Field(min_length=1)
    opens: dt.time
    closes: dt.time

    @field_serializer("opens", "closes")
    def _hh_mm(self, value: dt.time) -> str:
        return value.strftime("%H:%M")

    def describe(self, language: str = "vi") -> str:
        """`T2–T6 07:00–11:30`: runs of days joined by a dash, local time."""
        names, order = DAY_NAMES[language], sorted(self.days, key=DAYS.index)
        runs: list[list[Day]] = []
        for day in order:
            if runs and DAYS.index(day) == DAYS.index(runs[-1][-1]) + 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        days = ", ".join(
            names[r[0]]
            if len(r) == 1
            else f"{names[r[0]]}{'–' if len(r) > 2 else ', '}{names[r[-1]]}"
            for r in runs
        )
        return f"{days} {self.opens:%H:%M}–{self.closes:%H:%M}"

    @model_validator(mode="after")
    def _in_order(self) -> Hours:
        if self.opens >= self.closes:
            raise ValueError(f"opens ({self.opens:%H:%M}) must be before closes")
        if len(set(self.days)) != len(self.days):
            raise ValueError("a day repeats")
        return self


class Location(Strict):
    """Where a partner receives clients (HSDS location, address and schedule)."""

    key: Slug
    name: Text
    address: Text = Field(description="street and number, as on an envelope")
    area: Slug = Field(description="the area key (province.yaml) the address is in")
    postal_code: str | None = Field(default=None, pattern=r"^[0-9]{5,6}$")
    hours: list[Hours] = Field(default=[])


class Partner(Strict):
    """An organisation, in force from `valid_from` to `valid_to` (both days included; unset:
    open), and the partners that took over its work when it ended (the district police's ID
    cards went to the ward police on 1 March 2025): a launch to an ended partner is refused
    naming them, its running referrals keep it, and the directory export leaves it out."""

    slug: Slug
    name: Text
    name_en: Text
    kind: Literal["legal", "health", "police", "education", "social_work", "peer_group"]
    locations: list[Location] = Field(default=[])
    services: list[Service] = Field(default=[])
    contacts: list[Contact] = Field(min_length=1)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    successors: list[Slug] = Field(default=[])
    source: str | None = Field(
        default=None, max_length=300, description="the text that made or ended it"
    )

    @property
    def key(self) -> str:
        """The slug, as config/areas.py's succession checks call an entry's key."""
        return self.slug

    @model_validator(mode="after")
    def _unique_keys(self) -> Partner:
        """Loading matches rows by these (usecases/directory/loading.py): a repeat would merge two."""
        for what, keys in (
            ("locations keyed", [loc.key for loc in self.locations]),
            ("services for pathway", [svc.pathway for svc in self.services]),
            ("contacts named", [c.name for c in self.contacts]),
        ):
            if dupes := sorted({k for k in keys if keys.count(k) > 1}):
                raise ValueError(f"two {what} {', '.join(dupes)}")
        return self
