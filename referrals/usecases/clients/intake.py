"""Peer educators bring people in (issue 20): standing links, the intake form, the coordinators'
queue, and an intake taken into a client and a referral.

An admin gives a peer-group contact a standing link (`<public_url>/p/<token>`,
models/links.py `peer_token`); it serves every intake until revoked. The form sends a first
name or nickname, a phone only if the person agreed to be contacted, the area and the services
they need. Nothing is written unless all of it holds; the nickname and phone are sealed by the
office's vault at once (there is no client yet, so no client key), and the peer educator gets a
code back (`GT-…`), never a client's record.

The intake waits in its area's coordinators' queue (the policy's scope: a coordinator their
district, managers and admins every one); listing it decrypts nicknames, so each listing is on
record (`intake.listed`), as opening it for the launch form is (`intake.viewed`). A coordinator
takes it through the launch form (web/launching.py): the client is registered or found there
under the duplicate rules of usecases/clients/clients.py, the referral launched, and
`take_intake` marks the intake taken in the same transaction: it points at the client, its
sealed copy is wiped, and the client's timeline records where they came from (`client.source`).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select, update
from sqlmodel import Session, col

from referrals.config.fields import e164
from referrals.infra.context import Context
from referrals.models import policy
from referrals.models.codes import new_code
from referrals.models.directory import Area, Contact, Organization
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.intake import Intake, IntakeStatus, PeerLink
from referrals.models.links import peer_link_of, peer_token
from referrals.models.people import User, actor_name
from referrals.models.roles import Role
from referrals.models.workflow import Event, PathwayVersion
from referrals.usecases.clients.clients import client_for

PEER_GROUP = "peer_group"  # partners.yaml `kind` of a peer group's organisation
KEY = r"^[a-z0-9_-]{1,60}$"
INTAKE_CODE = r"^GT-[0-9A-Z]{5}-[0-9A-Z]{5}$"
QUEUE_LIMIT = 200  # a queue longer than this is a backlog to clear, not a page to read


class IntakeIn(BaseModel):
    """What the peer educator's form sends; anything else is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    nickname: str = Field(min_length=1, max_length=60)
    phone: str | None = Field(default=None, max_length=30)
    area: str = Field(pattern=KEY)
    services: list[Annotated[str, Field(pattern=KEY)]] = Field(min_length=1, max_length=20)
    agreed_to_contact: bool = False

    @field_validator("nickname")
    @classmethod
    def _nickname(cls, value: str) -> str:
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("a name has no control characters")
        return unicodedata.normalize("NFC", " ".join(value.split()))

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return e164(value) if value else None  # the client's phone rule (usecases/clients)

    @field_validator("services")
    @classmethod
    def _once(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _phone_needs_agreement(self) -> IntakeIn:
        if self.phone and not self.agreed_to_contact:
            raise ValueError("a phone only if the person agreed to be contacted")
        return self


class PeerLinkRefused(DomainError):
    """The standing link cannot be used: `invalid` (malformed or forged) or `revoked` (by an
    admin, or its contact or group is no longer active)."""

    def __init__(self, why: str) -> None:
        super().__init__(f"this peer link is {why}", key=f"peer_link_{why}")
        self.why = why


# ---- the standing link (admins) -------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    id: int
    token: str
    contact_id: int
    group: str  # the peer group's slug
    group_name: str


def create_peer_link(
    session: Session, *, contact_id: int, by: User, ctx: Context, now: dt.datetime
) -> IssuedLink:
    """A standing link for a peer group's contact (an admin's act, on the timeline). A contact
    of any other kind of organisation is refused: partners answer through their messages."""
    policy.require_role(by, Role.admin, doing="creating a peer link")
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"unknown contact {contact_id} (see `referrals partners --json`)")
    org = session.get(Organization, contact.organization_id)
    assert org is not None and org.id is not None  # a contact's organisation (foreign key)
    if org.kind != PEER_GROUP:
        raise DomainError(
            f"contact {contact_id} is of {org.slug}, not a peer group: only a peer group's "
            "contacts get a standing link",
            key="not_peer_group",
        )
    if not (contact.active and org.active):
        raise DomainError(f"contact {contact_id} is not active", key="contact_inactive")
    link = PeerLink(
        contact_id=contact_id, organization_id=org.id, created_at=now, created_by=actor_name(by)
    )
    session.add(link)
    session.flush()
    assert link.id is not None  # flushed
    session.add(
        Event(
            kind="peer_link.created",
            at=now,
            actor=actor_name(by),
            data={"peer_link": link.id, "contact": contact_id, "partner": org.slug},
        )
    )
    return IssuedLink(link.id, peer_token(ctx.vault, link.id), contact_id, org.slug, org.name)


def revoke_peer_link(session: Session, *, link_id: int, by: User, now: dt.datetime) -> bool:
    """Revoke a standing link (an admin's act); False if it already was."""
    policy.require_role(by, Role.admin, doing="revoking a peer link")
    link = session.get(PeerLink, link_id)
    if link is None:
        raise NotFound(f"unknown peer link {link_id}")
    if link.revoked_at is not None:
        return False
    link.revoked_at = now
    session.add(
        Event(
            kind="peer_link.revoked",
            at=now,
            actor=actor_name(by),
            data={"peer_link": link_id, "contact": link.contact_id},
        )
    )
    return True


# ---- the peer educator's form (no account) --------------------------------------------------


@dataclass(frozen=True)
class Choice:
    key: str  # a form's value, never shown
    name: str
    name_en: str


@dataclass(frozen=True)
class PeerForm:
    """What the form shows: the group, the areas and services to choose from, in the contact's
    language; and the code of an intake just sent through this link (`sent`)."""

    group_name: str
    group_name_en: str
    language: str
    areas: list[Choice]
    services: list[Choice]
    sent: str | None = None


def _open_link(session: Session, ctx: Context, token: str) -> tuple[PeerLink, Contact]:
    link_id = peer_link_of(ctx.vault, token)
    link = session.get(PeerLink, link_id) if link_id is not None else None
    if link is None:
        raise PeerLinkRefused("invalid")
    contact = session.get(Contact, link.contact_id)
    org = session.get(Organization, link.organization_id)
    assert contact is not None and org is not None  # foreign keys
    if link.revoked_at is not None or not (contact.active and org.active):
        raise PeerLinkRefused("revoked")
    return link, contact


def intake_areas(session: Session, on: dt.date) -> list[Choice]:
    """The areas clients are registered in on ON: those in force that day with no area in
    force beneath them, below the province (districts in Khánh Hòa's seeds; wards and communes
    after the 2025 reform)."""
    areas = [a for a in session.scalars(select(Area).order_by(col(Area.name))) if a.in_force(on)]
    parents = {a.parent_key for a in areas}
    return [
        Choice(a.key, a.name, a.name_en)
        for a in areas
        if a.key not in parents and a.level != "province"
    ]


def service_choices(session: Session) -> list[Choice]:
    """Each pathway at its latest version, by its name."""
    latest: dict[str, PathwayVersion] = {}
    for pv in session.scalars(select(PathwayVersion).order_by(col(PathwayVersion.version))):
        latest[pv.key] = pv
    return sorted((Choice(p.key, p.name, p.name_en) for p in latest.values()), key=lambda c: c.name)


def peer_form(
    session: Session, *, ctx: Context, token: str, now: dt.datetime, sent: str | None = None
) -> PeerForm:
    """The form behind a standing link (refused as `PeerLinkRefused`); `sent` is kept only if it
    is the code of an intake sent through this very link."""
    link, contact = _open_link(session, ctx, token)
    org = session.get(Organization, link.organization_id)
    assert org is not None  # foreign key
    if sent is not None:
        sent = session.scalars(
            select(col(Intake.code)).where(
                col(Intake.code) == sent, col(Intake.peer_link_id) == link.id
            )
        ).first()
    return PeerForm(
        org.name,
        org.name_en,
        contact.language,
        intake_areas(session, now.astimezone(ctx.tz).date()),
        service_choices(session),
        sent,
    )


def submit_intake(
    session: Session, *, ctx: Context, token: str, data: IntakeIn, now: dt.datetime
) -> str:
    """One person brought in through a standing link: the intake's code. Every check comes
    before the one insert, so a refusal writes nothing."""
    link, contact = _open_link(session, ctx, token)
    if data.area not in {a.key for a in intake_areas(session, now.astimezone(ctx.tz).date())}:
        raise DomainError(f"unknown area {data.area!r}", key="intake_area")
    known = {s.key for s in service_choices(session)}
    if unknown := [s for s in data.services if s not in known]:
        raise DomainError(f"unknown service {unknown[0]!r}", key="intake_service")
    assert link.id is not None and contact.id is not None  # loaded rows
    v = ctx.vault
    intake = Intake(
        code=new_code("GT"),
        peer_link_id=link.id,
        organization_id=link.organization_id,
        contact_id=contact.id,
        area_key=data.area,
        services=data.services,
        nickname_enc=v.encrypt(data.nickname, "intake.nickname"),
        phone_enc=v.encrypt(data.phone, "intake.phone"),
        agreed_to_contact=data.agreed_to_contact,
        created_at=now,
    )
    session.add(intake)
    session.add(
        Event(
            kind="intake.received",
            at=now,
            actor=policy.actor_of(policy.PartnerContact(contact.id, link.organization_id)),
            data={"intake": intake.code, "peer_link": link.id, "area": data.area},
        )
    )
    session.flush()
    return intake.code


# ---- the coordinators' queue ----------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """One intake in a queue: codes and names; the nickname decrypted for the reader."""

    code: str
    nickname: str | None
    area: str
    area_name: str
    area_name_en: str
    services: list[str]
    service_names: list[str]
    service_names_en: list[str]
    received_at: dt.datetime
    group: str
    group_name: str
    group_name_en: str
    agreed_to_contact: bool
    has_phone: bool
    actionable: bool  # `by` may take it (a coordinator of its area, an admin)


def intake_queue(
    session: Session, *, by: User, ctx: Context, now: dt.datetime, via: str
) -> list[Waiting]:
    """The intakes waiting in `by`'s scope, longest waiting first; the listing is recorded
    (`intake.listed`), since it shows nicknames."""
    policy.require_role(by, Role.coordinator, Role.manager, Role.admin, doing="the intake queue")
    query = (
        select(Intake, Area, Organization)
        .join(Area, col(Area.key) == col(Intake.area_key))
        .join(Organization, col(Organization.id) == col(Intake.organization_id))
        .where(col(Intake.status) == IntakeStatus.waiting.value)
        .order_by(col(Intake.created_at), col(Intake.id))
        .limit(QUEUE_LIMIT)
    )
    scope = policy.district_scope(by)
    if scope is not None:
        query = query.where(col(Intake.area_key).in_(policy.area_scope(scope)))
    names = {s.key: s for s in service_choices(session)}
    rows = [
        Waiting(
            code=i.code,
            nickname=ctx.vault.decrypt(i.nickname_enc, "intake.nickname"),
            area=i.area_key,
            area_name=a.name,
            area_name_en=a.name_en,
            services=list(i.services),
            service_names=[names[k].name if k in names else k for k in i.services],
            service_names_en=[names[k].name_en if k in names else k for k in i.services],
            received_at=i.created_at,
            group=o.slug,
            group_name=o.name,
            group_name_en=o.name_en,
            agreed_to_contact=i.agreed_to_contact,
            has_phone=i.phone_enc is not None,
            actionable=policy.acts_in_area(by, i.area_key),
        )
        for i, a, o in session.execute(query).tuples()
    ]
    if rows:
        session.add(
            Event(
                kind="intake.listed",
                at=now,
                actor=actor_name(by),
                data={"intakes": [r.code for r in rows], "fields": ["nickname"], "via": via},
            )
        )
    return rows


# ---- taking an intake: the launch form, prefilled, then the intake taken --------------------


@dataclass(frozen=True)
class Prefill:
    """What the launch form is filled with from an intake (nickname and phone only if asked)."""

    code: str
    area: str
    services: list[str]
    nickname: str | None
    phone: str | None


def _waiting(session: Session, by: User, code: str) -> Intake:
    """Intake `code` if `by` may take it (else as absent, or refused), and still waiting."""
    intake = session.scalars(select(Intake).where(col(Intake.code) == code)).first()
    if intake is None:
        raise NotFound(f"unknown intake {code!r}")
    policy.require_area(by, intake.area_key, what=f"intake {code!r}")
    if intake.status != IntakeStatus.waiting.value:
        raise Conflict(
            f"intake {code} was already {intake.status}", key="intake_taken", intake=code
        )
    return intake


def intake_for_launch(
    session: Session,
    *,
    by: User,
    ctx: Context,
    code: str,
    now: dt.datetime,
    reveal: bool = True,
    via: str = "web",
) -> Prefill:
    """An intake `by` may take, for the launch form; with `reveal`, its nickname and phone in
    clear, and the viewing recorded (`intake.viewed`)."""
    intake = _waiting(session, by, code)
    nickname = phone = None
    if reveal:
        nickname = ctx.vault.decrypt(intake.nickname_enc, "intake.nickname")
        phone = ctx.vault.decrypt(intake.phone_enc, "intake.phone")
        fields = [f for f, x in (("nickname", nickname), ("phone", phone)) if x]
        session.add(
            Event(
                kind="intake.viewed",
                at=now,
                actor=actor_name(by),
                data={"intake": code, "fields": fields, "via": via},
            )
        )
    return Prefill(code, intake.area_key, list(intake.services), nickname, phone)


def take_intake(
    session: Session, *, code: str, client_code: str, by: User, now: dt.datetime
) -> list[str]:
    """Intake `code` becomes client `client_code`'s (in the launch's transaction): taken, its
    sealed copy wiped, and the client's source on their timeline. A second taker, even at the
    same instant, is refused (`intake_taken`): the update only moves a waiting intake. Returns
    the services it asked for, so the coordinator is offered the ones not yet launched."""
    intake = _waiting(session, by, code)
    client = client_for(session, by, client_code, act=False)
    assert by.id is not None  # a stored user
    moved = session.execute(
        update(Intake)
        .where(col(Intake.id) == intake.id, col(Intake.status) == IntakeStatus.waiting.value)
        .values(
            status=IntakeStatus.taken.value,
            client_id=client.id,
            taken_by=by.id,
            taken_at=now,
            nickname_enc=None,
            phone_enc=None,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        raise Conflict(f"intake {code} was already taken", key="intake_taken", intake=code)
    org = session.get(Organization, intake.organization_id)
    assert org is not None  # foreign key
    session.add(
        Event(
            client_id=client.id,
            kind="client.source",
            at=now,
            actor=actor_name(by),
            data={"client": client.code, "peer_group": org.slug, "intake": code},
        )
    )
    return list(intake.services)
