"""The client arrives at the partner with the printed slip: the partner scans its QR code and
records it (issue 20).

The slip is paper the client carries and others may see, so its code opens an *arrival link*
(models/links.py `slip_url`), never the partner's action link: the page it opens shows the office,
the partner, the referral's code and the partner-facing service name, and one button. Opening it
changes nothing (a phone's camera app or a curious finder may open it); the button's POST records
`referral.arrived` once, with the time, while the referral is open (on hold too: a client who
turns up after a no-show is news the coordinator wants). A second press records nothing more and
says when it was recorded. The partner needs no account, so nothing here ever shows or takes
anything about the client.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlmodel import Session, col

from referrals.config.province import ProvinceFile
from referrals.infra.context import Context
from referrals.infra.runtime import Runtime
from referrals.models.directory import Organization, Service
from referrals.models.errors import DomainError
from referrals.models.lifecycle import OPEN, ReferralStatus
from referrals.models.links import referral_of_slip
from referrals.models.workflow import Event, Referral
from referrals.notifiers.addressing import in_language, language_of
from referrals.notifiers.messages import first_contacts
from referrals.usecases.referrals.no_show import ARRIVED

ACTOR = "slip"  # who records an arrival: whoever holds the slip's page, not a known contact


@dataclass(frozen=True)
class Office:
    """The office as partners and clients see it, in both languages; no phone when province.yaml
    names no office (then the province's own name stands for it)."""

    name: str
    name_en: str
    phone: str | None


def office_of(province: ProvinceFile | None = None) -> Office:
    """The office of province.yaml (`office:`), else the province's name with no phone."""
    province = province or Runtime.current().province.province
    if province.office is None:
        return Office(province.name, province.name_en, None)
    o = province.office
    return Office(o.name, o.name_en, o.phone)


def partner_language(session: Session, organization_id: int) -> str:
    """The language of the partner's first-rank contact, who reads the slip's page and English
    lines on the slip: Vietnamese unless that contact reads English."""
    first = first_contacts(session, organization_id)
    return language_of(first[0]) if first else "vi"


@dataclass
class SlipView:
    """What the arrival page shows: the office, the partner, codes and partner-facing names."""

    referral_id: int
    language: str
    code: str
    office: str
    office_phone: str | None
    partner: str
    service: str
    status: str
    arrived_at: dt.datetime | None
    recorded: bool = False  # this request recorded the arrival

    @property
    def open(self) -> bool:
        return ReferralStatus(self.status) in OPEN and self.status != ReferralStatus.draft


Refusal = Literal["invalid", "closed"]


class SlipRefused(DomainError):
    """The arrival link cannot record: forged or unknown (`invalid`), or the referral is no
    longer open (`closed`, with what the page still shows)."""

    def __init__(self, why: Refusal, view: SlipView | None = None) -> None:
        self.why, self.view = why, view
        super().__init__(f"slip refused: {why}")


def arrived_at(session: Session, referral_id: int) -> dt.datetime | None:
    """When the client's arrival was first recorded, or None."""
    return session.scalars(
        select(func.min(col(Event.at))).where(
            col(Event.referral_id) == referral_id, col(Event.kind) == ARRIVED
        )
    ).one()


def _view(session: Session, referral: Referral, office: Office) -> SlipView:
    assert referral.id is not None  # a loaded row has its id
    language = partner_language(session, referral.organization_id)
    partner = session.get(Organization, referral.organization_id)
    service = session.get(Service, referral.service_id)
    assert partner is not None and service is not None  # foreign keys
    return SlipView(
        referral_id=referral.id,
        language=language,
        code=referral.code,
        office=in_language(language, office.name, office.name_en),
        office_phone=office.phone,
        partner=in_language(language, partner.name, partner.name_en),
        service=in_language(language, service.name, service.name_en),
        status=referral.status,
        arrived_at=arrived_at(session, referral.id),
    )


def _opened(session: Session, ctx: Context, token: str, *, lock: bool) -> tuple[Referral, SlipView]:
    """The slip's referral and its view, or SlipRefused("invalid")."""
    referral_id = referral_of_slip(ctx.vault, token)
    referral = (
        session.get(Referral, referral_id, with_for_update=lock)
        if referral_id is not None
        else None
    )
    if referral is None:
        raise SlipRefused("invalid")
    return referral, _view(session, referral, office_of())


def view_slip_link(session: Session, *, ctx: Context, token: str) -> SlipView:
    """What the arrival page shows (writes nothing), or SlipRefused: a forged token is
    `invalid`; a referral no longer open is `closed`, with its view."""
    _, view = _opened(session, ctx, token, lock=False)
    if not view.open:
        raise SlipRefused("closed", view)
    return view


def record_arrival(session: Session, *, ctx: Context, token: str, now: dt.datetime) -> SlipView:
    """Record once that the client arrived (`referral.arrived` at `now`, actor "slip"); later
    presses record nothing and the view says when it was. Open referrals only, held ones
    included; the referral's row is locked so two presses at once record one arrival."""
    referral, view = _opened(session, ctx, token, lock=True)
    if not view.open:
        raise SlipRefused("closed", view)
    if view.arrived_at is None:
        session.add(
            Event(referral_id=referral.id, kind=ARRIVED, at=now, actor=ACTOR, data={"via": "slip"})
        )
        view.arrived_at, view.recorded = now, True
    return view
