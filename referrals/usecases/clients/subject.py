"""A client's rights over their data (Personal Data Protection Law 91/2025/QH15, Art. 13-15;
Decree 356/2025/ND-CP, Art. 5): to see all of it, and to erase it.

Both are audited: the export and the erasure are events on the client's history, with who did
it. Erasure deletes the client's data key (crypto-shredding) and the personal data (name, phone, ID
number and their lookup hashes), and keeps the pseudonymous code, the referrals, their steps and
events: nothing in those identifies the person, and the office's statistics stay right. Notes
about the client in the append-only events, and copies of the data in dumps made without the
keys, were sealed under that key and can no longer be read by anyone. A client with an open referral cannot be erased
until it is closed, so no partner is left waiting on a person the office no longer knows.

A person may have had two records merged into one (usecases/clients/merging.py): the other
record is a tombstone that keeps its own events and data key. The export is of the person: the
kept client's and their tombstones' details, and every note opened with whichever of their keys
sealed it. Erasing the kept client erases their tombstones too, keys and details, so nothing
about the person stays readable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from referrals.infra.client_keys import cipher_of
from referrals.infra.context import Context
from referrals.infra.crypto import ClientCipher
from referrals.models import policy
from referrals.models.directory import Organization
from referrals.models.errors import DomainError
from referrals.models.lifecycle import OPEN
from referrals.models.people import Client, ClientKey, Consent, User, actor_name
from referrals.models.roles import Role
from referrals.models.search import ClientTerm
from referrals.models.workflow import Event, Extension, Notification, Referral, Step
from referrals.usecases.clients.clients import get_client
from referrals.usecases.clients.merging import tombstones_of


def export_client(
    session: Session, *, code: str, by: User | None, ctx: Context, now: dt.datetime
) -> dict[str, Any]:
    """Everything held about a client, decrypted, as plain data; the export is an event. A
    manager's act (the client's right of access), in any district."""
    policy.require_role(by or policy.SYSTEM, Role.manager, Role.admin, doing="client export")
    client = get_client(session, code)
    cipher = cipher_of(session, ctx.vault, client)
    merged = tombstones_of(session, client)
    ciphers = [cipher, *(cipher_of(session, ctx.vault, t) for t in merged)]
    held = _Held.load(session, client, merged)
    out = {
        "exported_at": now.isoformat(),
        "client": _client_out(client, cipher),
        "merged": [
            {**_client_out(t, c), "merged_at": _iso(t.merged_at)}
            for t, c in zip(merged, ciphers[1:], strict=True)
        ],
        "consents": [_consent_out(c, held.orgs) for c in held.consents],
        "referrals": [_referral_out(r, held) for r in held.refs],
        "history": [
            {"kind": e.kind, "at": _iso(e.at), "actor": e.actor, "data": _opened(e.data, ciphers)}
            for e in held.events
        ],
        "extensions": _extensions_out(session, held, ciphers),
        "data_requests": _requests_out(session, [client, *merged], ctx, now),
    }
    session.add(
        Event(client_id=client.id, kind="client.exported", at=now, actor=actor_name(by), data={})
    )
    return out


def _requests_out(
    session: Session, people: list[Client], ctx: Context, now: dt.datetime
) -> list[dict[str, Any]]:
    """The person's own requests about their data (usecases/privacy/requests.py), their words
    opened: they are the person's data too."""
    from referrals.models.privacy import PrivacyRequest
    from referrals.usecases.privacy.requests import as_dict, opened_text

    codes = {c.id: c.code for c in people}
    query = select(PrivacyRequest).where(col(PrivacyRequest.client_id).in_(list(codes)))
    return [
        {**as_dict(r, codes[r.client_id], now), **opened_text(session, r, ctx)}
        for r in session.scalars(query.order_by(col(PrivacyRequest.id)))
    ]


@dataclass(frozen=True)
class _Held:
    """The rows an export reads: the client's referrals with their steps and messages, the
    events about the client (and the clients merged into them) or those referrals, the client's
    consents, and partners' slugs."""

    refs: list[Referral]
    orgs: dict[int | None, str]
    steps: list[Step]
    messages: list[Notification]
    events: list[Event]
    consents: list[Consent]

    @classmethod
    def load(cls, session: Session, client: Client, merged: list[Client]) -> _Held:
        refs = list(
            session.scalars(
                select(Referral)
                .where(col(Referral.client_id) == client.id)
                .order_by(col(Referral.id))
            )
        )
        orgs = {o.id: o.slug for o in session.scalars(select(Organization))}
        ids = [r.id for r in refs]
        steps = list(
            session.scalars(
                select(Step).where(col(Step.referral_id).in_(ids)).order_by(col(Step.id))
            )
        )
        messages = list(
            session.scalars(
                select(Notification)
                .where(col(Notification.referral_id).in_(ids))
                .order_by(col(Notification.id))
            )
        )
        events = list(
            session.scalars(
                select(Event)
                .where(
                    col(Event.client_id).in_([client.id, *(t.id for t in merged)])
                    | col(Event.referral_id).in_(ids)
                )
                .order_by(col(Event.id))
            )
        )
        consents = list(session.scalars(select(Consent).where(col(Consent.client_id) == client.id)))
        return cls(refs, orgs, steps, messages, events, consents)


def _client_out(client: Client, cipher: ClientCipher) -> dict[str, Any]:
    return {
        "code": client.code,
        "district": client.area_key,
        "name": cipher.decrypt(client.name_enc, "client.name"),
        "phone": cipher.decrypt(client.phone_enc, "client.phone"),
        "id_number": cipher.decrypt(client.id_number_enc, "client.id_number"),
        "created_at": _iso(client.created_at),
        "erased_at": _iso(client.erased_at),
    }


def _consent_out(c: Consent, orgs: dict[int | None, str]) -> dict[str, Any]:
    return {
        "partner": orgs.get(c.organization_id),
        "purpose": c.purpose,
        "method": c.method,
        "granted_at": _iso(c.granted_at),
        "withdrawn_at": _iso(c.withdrawn_at),
    }


def _referral_out(r: Referral, held: _Held) -> dict[str, Any]:
    return {
        "code": r.code,
        "pathway": r.pathway_key,
        "partner": held.orgs.get(r.organization_id),
        "status": r.status,
        "outcome": r.outcome,
        "outcome_reason": r.outcome_reason,
        "launched_at": _iso(r.launched_at),
        "closed_at": _iso(r.closed_at),
        "steps": [
            {
                "key": s.key,
                "status": s.status,
                "due_at": _iso(s.due_at),
                "completed_at": _iso(s.completed_at),
            }
            for s in held.steps
            if s.referral_id == r.id
        ],
        "messages": [
            {
                "template": m.template,
                "channel": m.channel,
                "status": m.status,
                "sent_at": _iso(m.sent_at),
            }
            for m in held.messages
            if m.referral_id == r.id
        ],
    }


def erase_client(session: Session, *, code: str, by: User | None, now: dt.datetime) -> Client:
    """Remove the client's personal data for good; keep the code and the anonymous history. A
    manager's act, in any district."""
    policy.require_role(by or policy.SYSTEM, Role.manager, Role.admin, doing="client erase")
    client = get_client(session, code)
    session.refresh(client, with_for_update=True)  # one erasure at a time, and not mid-rotation
    if client.erased_at is not None:
        raise DomainError(f"client {code} was already erased", key="already_erased")
    still_open = list(
        session.scalars(
            select(col(Referral.code)).where(
                col(Referral.client_id) == client.id, col(Referral.status).in_(sorted(OPEN))
            )
        )
    )
    if still_open:
        raise DomainError(
            f"client {code} has open referrals ({', '.join(still_open)}); close or cancel them "
            "first, so no partner is left waiting",
            key="erase_open",
            referrals=", ".join(still_open),
        )
    _shred(session, client, now)
    session.add(
        Event(client_id=client.id, kind="client.erased", at=now, actor=actor_name(by), data={})
    )
    for tombstone in tombstones_of(session, client):  # the same person's merged records
        if tombstone.erased_at is None:
            _shred(session, tombstone, now)
            session.add(
                Event(
                    client_id=tombstone.id,
                    kind="client.erased",
                    at=now,
                    actor=actor_name(by),
                    data={"with": client.code},
                )
            )
    return client


def _shred(session: Session, client: Client, now: dt.datetime) -> None:
    """The shredding: every copy of their ciphertext is now noise."""
    session.execute(delete(ClientKey).where(col(ClientKey.client_id) == client.id))
    session.execute(delete(ClientTerm).where(col(ClientTerm.client_id) == client.id))
    client.name_enc = client.phone_enc = client.id_number_enc = None
    client.phone_lookup = client.id_number_lookup = client.name_lookup = None
    client.erased_at = now


def _extensions_out(
    session: Session, held: _Held, ciphers: list[ClientCipher]
) -> list[dict[str, Any]]:
    """The partners' requests for more time on the client's referrals, their reasons opened
    (free text that may name the client, so part of what is held about them)."""
    codes = {r.id: r.code for r in held.refs}
    steps = {s.id: s.key for s in held.steps}
    found = session.scalars(
        select(Extension)
        .where(col(Extension.referral_id).in_(list(codes)))
        .order_by(col(Extension.id))
    )
    return [
        {
            "referral": codes[x.referral_id],
            "step": steps.get(x.step_id),
            "asked_at": _iso(x.asked_at),
            "new_due_at": _iso(x.new_due_at),
            "status": x.status,
            "reason": _open_any(x.reason_enc, ciphers, "extension.reason"),
        }
        for x in found
    ]


def _open_any(sealed: str | None, ciphers: list[ClientCipher], column: str) -> str | None:
    """A value sealed under one of the person's keys (after a merge, maybe a tombstone's): each
    key is tried, another key's tag does not match; None once the keys are gone."""
    for cipher in ciphers:
        try:
            value = cipher.decrypt(sealed, column)
        except ValueError:  # another record's key, or a secret no longer held
            continue
        if value is not None:
            return value
    return None


def _opened(data: dict[str, Any], ciphers: list[ClientCipher]) -> dict[str, Any]:
    """An event's data with its sealed note opened (None once the client's key is gone). A
    note is sealed under the key of the record it was written about, which after a merge may
    be a tombstone's: each of the person's keys is tried (another key's tag does not match)."""
    if "note_enc" not in data:
        return data
    rest = {k: v for k, v in data.items() if k != "note_enc"}
    return {**rest, "note": _open_any(data["note_enc"], ciphers, "event.note")}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None
