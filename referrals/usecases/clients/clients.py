"""Clients (pseudonymous; PII sealed by the vault) and their consents."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlmodel import Session, col

from referrals.config.areas import descendants
from referrals.config.fields import InvalidValue
from referrals.config.province import e164
from referrals.infra.client_keys import cipher_of, refuse_if_erased
from referrals.infra.context import Context
from referrals.models import policy
from referrals.models.codes import new_code
from referrals.models.directory import Area, AreaSuccessor, Organization
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.lifecycle import OPEN, Action, Reason
from referrals.models.people import Client, ClientKey, Consent, ConsentMethod, User, actor_name
from referrals.models.search import ClientTerm
from referrals.models.workflow import Event, PathwayVersion, Referral
from referrals.usecases.clients.finding import likely_same, name_key, name_terms
from referrals.usecases.clients.merging import kept_codes, refuse_if_merged

ID_NUMBER = re.compile(r"^(\d{9}|\d{12})$")  # CMND (9 digits) or CCCD / căn cước (12 digits)


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    phone: str | None = None
    id_number: str | None = None
    district: str = Field(min_length=1, max_length=60)
    # Said when an existing client has the same phone or ID number and this is another person:
    # why (kept sealed under the new client's key, like any free text about them).
    different_person: str | None = Field(default=None, min_length=3, max_length=300)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(unicodedata.category(ch) == "Cc" for ch in value.replace("\t", " ")):
            raise InvalidValue("a name has no control characters", key="bad_name")
        return unicodedata.normalize("NFC", " ".join(value.split()))

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return e164(value) if value else None

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        if not value:
            return None
        digits = value.replace(" ", "")
        if not ID_NUMBER.match(digits):
            raise InvalidValue("an ID number has 9 (CMND) or 12 (CCCD) digits", key="bad_id_number")
        return digits


@dataclass(frozen=True)
class SealedClient:
    """A new client's row, their data key (wrapped) and their name's index terms: stored
    together in one transaction."""

    row: dict[str, object]
    wrapped_key: str
    terms: list[str]
    why_enc: str | None  # `different_person`, sealed under the new client's key


def seal_client(
    data: ClientIn, *, ctx: Context, created_by: User | None, now: dt.datetime
) -> SealedClient:
    """A new client: a fresh code, a data key, ciphertexts under it and keyed lookup hashes."""
    v = ctx.vault
    code = new_code("C")
    cipher, wrapped = v.new_client_key(code)
    row: dict[str, object] = {
        "code": code,
        "area_key": data.district,
        "name_enc": cipher.encrypt(data.name, "client.name"),
        "phone_enc": cipher.encrypt(data.phone, "client.phone"),
        "id_number_enc": cipher.encrypt(data.id_number, "client.id_number"),
        "phone_lookup": v.lookup(data.phone, "phone"),
        "id_number_lookup": v.lookup(data.id_number, "id_number"),
        "name_lookup": name_key(v, data.name),
        "created_at": now,
        "created_by": created_by.id if created_by else None,
    }
    why = cipher.encrypt(data.different_person, "event.note")
    return SealedClient(row, wrapped, name_terms(v, data.name), why)


def require_area(session: Session, key: str, *, on: dt.date | None = None) -> Area:
    """The area KEY; with ON, only if it is in force that day (a new record gets a unit of the
    day it is made: the 2025 reform ended the districts). The refusal names the units in force
    that took over its territory, else every unit in force."""
    area = session.get(Area, key)
    if area is None:
        rows = session.scalars(select(Area).order_by(col(Area.key)))
        known = ", ".join(a.key for a in rows if on is None or a.in_force(on))
        raise NotFound(f"unknown district {key!r} ({'in force' if on else 'known'}: {known})")
    if on is not None and not area.in_force(on):
        now_in_force = [
            a for a in session.scalars(select(Area).order_by(col(Area.key))) if a.in_force(on)
        ]
        taken_over = successors_in_force(session, key, on)
        choices = ", ".join(taken_over or [a.key for a in now_in_force])
        ended = (
            f"ended on {area.valid_to:%d/%m/%Y}"
            if area.valid_to and area.valid_to < on
            else "is not in force yet"
        )
        raise DomainError(
            f"area {key!r} ({area.name}) {ended}: record it under a unit in force on "
            f"{on:%d/%m/%Y}: {choices}",
            key="area_not_in_force",
            area=area.name,
            choices=choices,
        )
    return area


def successors_in_force(session: Session, key: str, on: dt.date) -> list[str]:
    """The areas in force on ON that took over KEY's territory, through every later reform
    (config/areas.py follows the succession, here over the directory's rows)."""
    rows = {a.key: a for a in session.scalars(select(Area))}
    return successors_of(rows, list(session.scalars(select(AreaSuccessor))), key, on)


def successors_of(
    rows: dict[str, Area], links: list[AreaSuccessor], key: str, on: dt.date
) -> list[str]:
    """successors_in_force over rows already loaded (a bulk launch loads them once)."""
    successors: dict[str, list[str]] = {}
    for link in links:
        successors.setdefault(link.area_key, []).append(link.successor_key)
    dated = [
        SimpleNamespace(
            key=k, valid_from=a.valid_from, valid_to=a.valid_to, successors=successors.get(k, [])
        )
        for k, a in rows.items()
    ]
    return [k for k in descendants(dated, key) if rows[k].in_force(on)]


def refuse_ended_area(client: Client, area: Area, successors: list[str], on: dt.date) -> None:
    """A referral is recorded under the client's area, which must be in force on its day: a
    client recorded under a unit that has since ended is moved first (move_client), to one of
    the units that took over its territory."""
    if area.in_force(on):
        return
    choices = "|".join(successors) or "KEY"
    raise DomainError(
        f"client {client.code} is recorded under {area.name} ({area.key}), not in force on "
        f"{on:%d/%m/%Y}: move them first (referrals client move {client.code} --district "
        f"{choices}), then launch",
        key="client_area_ended",
        client=client.code,
        area=area.name,
        choices=", ".join(successors),
    )


def move_client(
    session: Session, *, code: str, district: str, by: User, now: dt.datetime, tz: ZoneInfo
) -> Client:
    """Record client CODE under DISTRICT from now on: a unit in force today that `by` acts in,
    as well as in the client's present area (a coordinator of a former district moves its
    clients to the wards that replaced it). Their referrals keep the area they were launched
    in; the move is on the client's history."""
    client = client_for(session, by, code)
    before = client.area_key
    area = require_area(session, district, on=now.astimezone(tz).date())
    policy.require_area(by, area.key, what=f"area {area.key!r}")
    if area.key == before:
        raise DomainError(f"client {code} is already recorded under {area.key}", key="same_area")
    client.area_key = area.key
    session.add(
        Event(
            client_id=client.id,
            kind="client.moved",
            at=now,
            actor=actor_name(by),
            data={"client": client.code, "from": before, "to": area.key},
        )
    )
    return client


class SamePerson(Conflict):
    """An existing client has this phone or ID number: using them is almost always right."""


class LikelySame(SamePerson):
    """A client of the same district has (nearly) this name: perhaps the same person, perhaps
    not; the coordinator looks before a second record is made."""


def same_person(session: Session, ctx: Context, data: ClientIn) -> list[Client]:
    """Clients (not erased) whose phone or ID number is exactly the new one's, matched by the
    keyed hashes under every secret (a rotation may not have reached every row yet)."""
    v = ctx.vault
    wanted = [
        (col(Client.id_number_lookup), v.lookups(data.id_number, "id_number")),
        (col(Client.phone_lookup), v.lookups(data.phone, "phone")),
    ]
    found: dict[str, Client] = {}
    for column, hashes in wanted:
        if hashes:
            # Not a tombstone (merged into another client, usecases/clients/merging.py): the
            # client it was merged into, who is the same person, answers for its phone and ID.
            merged = select(col(Client.merged_into_id)).where(column.in_(hashes)).correlate(None)
            query = select(Client).where(
                column.in_(hashes) | col(Client.id).in_(merged),
                col(Client.erased_at).is_(None),
                col(Client.merged_into_id).is_(None),
            )
            found.update((c.code, c) for c in session.scalars(query.order_by(col(Client.id))))
    return list(found.values())


def _refuse_same_person(by: User | None, matches: list[Client]) -> None:
    """Name the existing clients the creator may see; of others, say only that they exist."""
    seen = [c for c in matches if by is None or policy.sees_area(by, c.area_key)]
    if seen:
        codes = ", ".join(c.code for c in seen)
        raise SamePerson(
            f"client {codes} has this phone or ID number: use them, or say why this is a "
            "different person (--different-person REASON)",
            key="same_person",
            clients=codes,
        )
    raise SamePerson(
        "a client in another district has this phone or ID number: ask a manager, or say why "
        "this is a different person (--different-person REASON)",
        key="same_person_elsewhere",
    )


def add_client(
    session: Session, *, data: ClientIn, ctx: Context, created_by: User | None, now: dt.datetime
) -> Client:
    """A new client, unless the phone or ID number is already a client's: then a refusal that
    names them, or, with `different_person`, the new client and the reason on the record."""
    require_area(session, data.district, on=now.astimezone(ctx.tz).date())
    if created_by is not None:
        policy.require_area(created_by, data.district, what=f"district {data.district}")
    matches = same_person(session, ctx, data)
    if matches and not data.different_person:
        _refuse_same_person(created_by, matches)
    likely = [] if matches else likely_same(session, ctx.vault, data.name, data.district)
    if likely and not data.different_person:
        codes = ", ".join(c.code for c in likely)
        raise LikelySame(
            f"client {codes} in this district has a name like this one: use them if it is the "
            "same person, or say why this is a different person (--different-person REASON)",
            key="likely_same",
            clients=codes,
        )
    matches = matches or likely
    sealed = seal_client(data, ctx=ctx, created_by=created_by, now=now)
    # The row is a plain dict (shared with importing's bulk Core insert), not the fields' types.
    client = Client(**sealed.row)  # type: ignore[arg-type]  # a dict of plain values
    session.add(client)
    session.flush()
    assert client.id is not None  # flushed: the database gave it its id
    session.add(ClientKey(client_id=client.id, wrapped=sealed.wrapped_key, created_at=now))
    session.add_all(ClientTerm(term=t, client_id=client.id) for t in sealed.terms)
    session.add(
        Event(
            client_id=client.id,
            kind="client.added",
            at=now,
            actor=actor_name(created_by),
            data={"client": client.code, "district": data.district},
        )
    )
    if matches and sealed.why_enc:
        session.add(
            Event(
                client_id=client.id,
                kind="client.not_same_person",
                at=now,
                actor=actor_name(created_by),
                data={
                    "client": client.code,
                    "not": [c.code for c in matches],
                    "why_enc": sealed.why_enc,
                },
            )
        )
    return client


def get_client(session: Session, code: str) -> Client:
    client = session.scalars(select(Client).where(col(Client.code) == code)).first()
    if client is None:
        raise NotFound(f"unknown client {code!r}")
    return client


def client_for(session: Session, by: User | None, code: str, *, act: bool = True) -> Client:
    """Client `code` as `by` may see it (and, with `act`, change it), else as if absent; `None`
    is the engine itself (a withdrawal cascading, a test's setup)."""
    client = get_client(session, code)
    if by is not None:
        policy.require_area(by, client.area_key, what=f"client {code!r}", act=act)
    return client


def _partner(session: Session, slug: str) -> Organization:
    org = session.scalars(select(Organization).where(col(Organization.slug) == slug)).first()
    if org is None:
        raise NotFound(f"unknown partner {slug!r} (see `referrals partners`)")
    return org


def _purpose(session: Session, key: str) -> str:
    pathway_key = col(PathwayVersion.key)
    if session.scalars(select(pathway_key).where(pathway_key == key)).first() is None:
        known = ", ".join(sorted(set(session.scalars(select(pathway_key)))))
        raise NotFound(f"unknown purpose {key!r}: a pathway key ({known})")
    return key


def grant_consent(
    session: Session,
    *,
    client_code: str,
    partner: str,
    purpose: str,
    method: ConsentMethod,
    by: User | None,
    now: dt.datetime,
) -> tuple[Consent, bool]:
    """Record consent; granting what is already granted changes nothing. Returns (consent, created)."""
    client, org, purpose = (
        client_for(session, by, client_code),
        _partner(session, partner),
        _purpose(session, purpose),
    )
    refuse_if_erased(client)
    refuse_if_merged(client, kept_codes(session, [client]))
    current = _active_consents(session, client, org, purpose)
    if current:
        return current[0], False
    assert client.id is not None and org.id is not None  # loaded rows have their ids
    consent = Consent(
        client_id=client.id,
        organization_id=org.id,
        purpose=purpose,
        method=method.value,
        granted_at=now,
        granted_by=by.id if by else None,
    )
    session.add(consent)
    session.add(
        Event(
            client_id=client.id,
            kind="consent.granted",
            at=now,
            actor=actor_name(by),
            data={"partner": org.slug, "purpose": purpose, "method": method.value},
        )
    )
    session.flush()
    return consent, True


@dataclass
class Withdrawn:
    consents: int
    cancelled: list[str]  # the referrals to that partner the withdrawal closed


def withdraw_consent(
    session: Session,
    *,
    client_code: str,
    partner: str,
    purpose: str | None,
    by: User | None,
    now: dt.datetime,
    ctx: Context,
) -> Withdrawn:
    """Withdraw the client's consents to `partner` (for one purpose, or all).

    The partner may no longer be asked: its open referrals for those purposes are cancelled
    (reason `consent_withdrawn`), and whoever there received one is told it is closed, by code
    only, like any cancellation."""
    from referrals.usecases.referrals.advancing import advance  # advancing needs nothing from here

    client, org = client_for(session, by, client_code), _partner(session, partner)
    consents = _active_consents(
        session, client, org, _purpose(session, purpose) if purpose else None
    )
    if not consents:
        what = f" for {purpose}" if purpose else ""
        raise DomainError(f"client {client.code} has no active consent with {org.slug}{what}")
    for consent in consents:
        consent.withdrawn_at, consent.withdrawn_by = now, by.id if by else None
        session.add(
            Event(
                client_id=client.id,
                kind="consent.withdrawn",
                at=now,
                actor=actor_name(by),
                data={"partner": org.slug, "purpose": consent.purpose},
            )
        )
    session.flush()
    open_refs = session.scalars(
        select(col(Referral.code)).where(
            col(Referral.client_id) == client.id,
            col(Referral.organization_id) == org.id,
            col(Referral.pathway_key).in_([c.purpose for c in consents]),
            col(Referral.status).in_(sorted(OPEN)),
        )
    ).all()
    for code in open_refs:
        advance(
            session,
            code=code,
            action=Action.cancel,
            by=by if by is not None else policy.SYSTEM,  # None: the engine (as client_for says)
            ctx=ctx,
            now=now,
            reason=Reason.consent_withdrawn.value,
        )
    return Withdrawn(consents=len(consents), cancelled=list(open_refs))


def _active_consents(
    session: Session, client: Client, org: Organization, purpose: str | None
) -> list[Consent]:
    query = select(Consent).where(
        col(Consent.client_id) == client.id,
        col(Consent.organization_id) == org.id,
        col(Consent.withdrawn_at).is_(None),
    )
    if purpose:
        query = query.where(col(Consent.purpose) == purpose)
    return list(session.scalars(query))


REVEAL_PURPOSES = ("contact_client", "partner_asked", "verify_identity", "other")


def reveal_client(
    session: Session, *, code: str, user: User, purpose: str, ctx: Context, now: dt.datetime
) -> dict[str, str | None]:
    """A client's name, phone and ID number in clear, for one person, with the view audited."""
    if purpose not in REVEAL_PURPOSES:
        raise DomainError(f"say why you need the details (one of: {', '.join(REVEAL_PURPOSES)})")
    client = client_for(session, user, code, act=False)
    refuse_if_erased(client)
    cipher = cipher_of(session, ctx.vault, client)
    shown = {
        "name": cipher.decrypt(client.name_enc, "client.name"),
        "phone": cipher.decrypt(client.phone_enc, "client.phone"),
        "id_number": cipher.decrypt(client.id_number_enc, "client.id_number"),
    }
    session.add(
        Event(
            client_id=client.id,
            kind="pii.viewed",
            at=now,
            actor=actor_name(user),
            data={"fields": sorted(k for k, x in shown.items() if x), "via": "web", "why": purpose},
        )
    )
    return shown
