"""Data subjects' requests (Law 91/2025/QH15 Art. 4 k1, k5; Decree 356/2025/ND-CP Art. 5):
recorded with their channel and the day received, acknowledged within 02 working days, carried
out within the kind's calendar days (longer when a partner must act), extended at most once
with a reason, and closed with what was done, linked to the export or erasure it caused.

Deadlines come from the province's calendar (infra/calendar.py): working days skip weekends,
Tết and the public holidays; calendar days end at the office's closing time on the last day.
The sweep escalates a late acknowledgement and a late completion once each (usecases/privacy/
sweep.py). The requester's words, the extension's reason and the outcome note are sealed under
the client's key: an erasure shreds them. Events carry codes and kinds only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlmodel import Session, col

from referrals.config.pathways import DueRule
from referrals.config.privacy import DataProtection, RequestKind
from referrals.infra.calendar import WorkingCalendar
from referrals.infra.client_keys import cipher_of, sealing_cipher
from referrals.infra.context import Context
from referrals.models import policy
from referrals.models.bounds import check_instant
from referrals.models.codes import new_code
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Client, User, actor_name
from referrals.models.privacy import Channel, Outcome, PrivacyRequest
from referrals.models.roles import Role
from referrals.models.workflow import Event
from referrals.usecases.clients.clients import get_client
from referrals.usecases.clients.subject import erase_client, export_client

# The event each kind's completion leaves on the client's history, linked when it is closed.
LINKS = {
    RequestKind.access: "client.exported",
    RequestKind.provide: "client.exported",
    RequestKind.erase: "client.erased",
}
MAX_TEXT = 4000


def require_staff(by: User | None, doing: str) -> None:
    """Requests, breaches and the processing record are managers' and admins' work."""
    policy.require_role(by or policy.SYSTEM, Role.manager, Role.admin, doing=doing)


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"{what} needs a time zone")
    check_instant(value, what)
    return value.astimezone(dt.UTC)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RequestIn(_In):
    client: str = Field(min_length=1, max_length=20)
    kind: RequestKind
    channel: Channel
    received_at: dt.datetime
    third_party: bool = False
    text: str | None = Field(default=None, max_length=MAX_TEXT)

    @field_validator("received_at")
    @classmethod
    def _received(cls, value: dt.datetime) -> dt.datetime:
        return _aware(value, "received_at")


class ExtendIn(_In):
    days: int = Field(ge=1, le=365)
    reason: str = Field(min_length=3, max_length=MAX_TEXT)


class CloseIn(_In):
    outcome: Outcome
    note: str | None = Field(default=None, max_length=MAX_TEXT)
    event_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    erase: bool = False  # carry out the erasure now (erase_client), and link it
    export: bool = False  # make the export now (export_client), and link it


def calendar_days(
    calendar: WorkingCalendar, cfg: DataProtection, start: dt.datetime, days: int
) -> dt.datetime:
    """`days` calendar days after `start`'s local day (the first day not counted), due at the
    office's closing time; moved to the next working day only if the province says so (Civil
    Code Art. 148 k5)."""
    day = start.astimezone(calendar.tz).date() + dt.timedelta(days=days)
    if cfg.roll_to_working_day:
        while not calendar.is_working_day(day):
            day += dt.timedelta(days=1)
    return calendar.closing(day)


def due_dates(
    calendar: WorkingCalendar,
    cfg: DataProtection,
    *,
    kind: RequestKind,
    third_party: bool,
    received_at: dt.datetime,
) -> tuple[dt.datetime, dt.datetime]:
    """(acknowledgement due, completion due) for a request received at `received_at`."""
    ack = calendar.due(received_at, DueRule(working_days=cfg.acknowledge_working_days))
    limit = cfg.limits.of(kind)
    days = limit.via_third_party_days if third_party else limit.days
    return ack, calendar_days(calendar, cfg, received_at, days)


def _person(session: Session, code: str) -> Client:
    """The client a request is about: a merged record's code gives the record kept."""
    client = get_client(session, code)
    if client.merged_into_id is not None:
        kept = session.get(Client, client.merged_into_id)
        assert kept is not None
        return kept
    return client


def record_request(
    session: Session,
    *,
    data: RequestIn,
    cfg: DataProtection,
    by: User | None,
    ctx: Context,
    now: dt.datetime,
) -> PrivacyRequest:
    """Record a request received on `data.received_at`, with its two deadlines."""
    require_staff(by, "recording a data subject's request")
    if data.received_at > now + dt.timedelta(minutes=5):
        raise DomainError("a request cannot be received in the future", key="privacy_future")
    client = _person(session, data.client)
    text = None
    if data.text:
        text = sealing_cipher(session, ctx.vault, client).encrypt(data.text, "privacy.text")
    ack, due = due_dates(
        ctx.calendar,
        cfg,
        kind=data.kind,
        third_party=data.third_party,
        received_at=data.received_at,
    )
    actor = actor_name(by)
    request = PrivacyRequest(
        code=new_code("YC"),
        client_id=_id(client),
        kind=data.kind.value,
        channel=data.channel.value,
        third_party=data.third_party,
        text_enc=text,
        received_at=data.received_at,
        ack_due_at=ack,
        due_at=due,
        created_at=now,
        created_by=actor,
    )
    session.add(request)
    session.flush()
    _event(session, request, "privacy.request.received", actor, now, channel=request.channel)
    return request


def _id(client: Client) -> int:
    assert client.id is not None  # a stored client has its id
    return client.id


def _event(
    session: Session, request: PrivacyRequest, kind: str, actor: str, now: dt.datetime, **data: Any
) -> Event:
    event = Event(
        client_id=request.client_id,
        kind=kind,
        at=now,
        actor=actor,
        data={"request": request.code, "kind": request.kind, **data},
    )
    session.add(event)
    session.flush()
    return event


def get_request(session: Session, code: str, *, lock: bool = False) -> PrivacyRequest:
    query = select(PrivacyRequest).where(col(PrivacyRequest.code) == code)
    if lock:
        query = query.with_for_update()
    found = session.scalars(query).first()
    if found is None:
        raise NotFound(f"unknown request {code!r}")
    return found


def _open(request: PrivacyRequest) -> None:
    if request.closed_at is not None:
        raise DomainError(
            f"request {request.code} was closed ({request.outcome}); nothing was changed",
            key="privacy_closed",
        )


def acknowledge(
    session: Session, *, code: str, by: User | None, now: dt.datetime
) -> PrivacyRequest:
    """The subject was answered that the request is being handled (Decree 356 Art. 5)."""
    require_staff(by, "acknowledging a request")
    request = get_request(session, code, lock=True)
    _open(request)
    if request.acknowledged_at is not None:
        raise DomainError(f"request {code} was already acknowledged", key="privacy_acked")
    request.acknowledged_at = now
    request.acknowledged_by = actor_name(by)
    _event(
        session,
        request,
        "privacy.request.acknowledged",
        request.acknowledged_by,
        now,
        late=now > request.ack_due_at,
    )
    return request


def extend(
    session: Session,
    *,
    code: str,
    data: ExtendIn,
    cfg: DataProtection,
    by: User | None,
    ctx: Context,
    now: dt.datetime,
) -> PrivacyRequest:
    """The one extension Decree 356 Art. 5 allows: at most the kind's `extension_max_days`,
    with a reason (told to the subject), decided before the limit has passed."""
    require_staff(by, "extending a request")
    request = get_request(session, code, lock=True)
    _open(request)
    if request.extended_at is not None:
        raise DomainError(
            f"request {code} was already extended once (to {_day(request.due_at, ctx)}); "
            "Decree 356 Art. 5 allows one extension",
            key="privacy_extended",
        )
    cap = cfg.limits.of(request.kind).extension_max_days
    if data.days > cap:
        raise DomainError(
            f"an extension of a {request.kind} request is at most {cap} days (Decree 356 Art. 5)",
            key="privacy_extension_cap",
        )
    if now > request.due_at:
        raise DomainError(
            f"request {code} was due {_day(request.due_at, ctx)}: an extension is decided "
            "before the limit passes",
            key="privacy_extension_late",
        )
    client = session.get(Client, request.client_id)
    assert client is not None
    reason = sealing_cipher(session, ctx.vault, client).encrypt(data.reason, "privacy.reason")
    actor = actor_name(by)
    request.was_due_at = request.due_at
    request.due_at = calendar_days(ctx.calendar, cfg, request.due_at, data.days)
    request.extended_at, request.extended_by = now, actor
    request.extension_days, request.extension_reason_enc = data.days, reason
    _event(
        session,
        request,
        "privacy.request.extended",
        actor,
        now,
        days=data.days,
        due_at=request.due_at.isoformat(),
    )
    return request


def _day(at: dt.datetime, ctx: Context) -> str:
    return at.astimezone(ctx.tz).strftime("%d/%m/%Y")


@dataclass
class Closed:
    request: PrivacyRequest
    event: Event | None
    export: dict[str, Any] | None = None


def close(
    session: Session,
    *,
    code: str,
    data: CloseIn,
    by: User | None,
    ctx: Context,
    now: dt.datetime,
) -> Closed:
    """Close a request with its outcome, linking the event of what was done: the export
    (access, provide) or the erasure (erase) made now (`export`, `erase`), named (`event_id`),
    or else the client's latest such event since the request came in."""
    require_staff(by, "closing a request")
    request = get_request(session, code, lock=True)
    _open(request)
    kind = RequestKind(request.kind)
    client = session.get(Client, request.client_id)
    assert client is not None
    if data.erase and data.export:
        raise DomainError("give --erase or --export, not both", key="privacy_both")
    exported = None
    if data.export:
        exported = export_client(session, code=client.code, by=by, ctx=ctx, now=now)
    if data.erase:
        if kind is not RequestKind.erase:
            raise DomainError(
                f"request {code} is a {kind} request, not an erasure", key="privacy_not_erase"
            )
        if data.note:
            raise DomainError(
                "an erasure shreds the client's key: an outcome note could not be kept; "
                "close without --note",
                key="privacy_note_erased",
            )
        erase_client(session, code=client.code, by=by, now=now)
    linked = _linked(session, request, kind, data, client)
    note = None
    if data.note:
        note = sealing_cipher(session, ctx.vault, client).encrypt(data.note, "privacy.note")
    actor = actor_name(by)
    request.closed_at, request.closed_by = now, actor
    request.outcome, request.outcome_note_enc = data.outcome.value, note
    request.event_id = linked.id if linked else None
    _event(
        session,
        request,
        "privacy.request.closed",
        actor,
        now,
        outcome=request.outcome,
        late=now > request.due_at,
        **({"event": linked.id} if linked else {}),
    )
    return Closed(request, linked, exported)


def _linked(
    session: Session, request: PrivacyRequest, kind: RequestKind, data: CloseIn, client: Client
) -> Event | None:
    wanted = LINKS.get(kind)
    if data.event_id is not None:
        event = session.get(Event, data.event_id)
        if event is None or event.client_id != client.id:
            raise NotFound(f"no event {data.event_id} on client {client.code}")
        if wanted and event.kind != wanted:
            raise DomainError(
                f"event {data.event_id} is a {event.kind}, not a {wanted}", key="privacy_link"
            )
        return event
    if wanted is None:
        return None
    session.flush()  # an export or erasure made just now
    event = session.scalars(
        select(Event)
        .where(
            col(Event.client_id) == client.id,
            col(Event.kind) == wanted,
            col(Event.at) >= request.received_at,
        )
        .order_by(col(Event.at).desc(), col(Event.id).desc())
    ).first()
    if event is None and data.outcome in (Outcome.done, Outcome.partly):
        erasing = kind is RequestKind.erase
        how, what = ("--erase", "an erasure") if erasing else ("--export FILE", "an export")
        raise DomainError(
            f"request {request.code} ({kind}) is done by {what} of the client's data since it "
            f"came in: use {how}, or name the event with --event",
            key="privacy_unlinked",
        )
    return event


def list_requests(
    session: Session, *, by: User | None, now: dt.datetime, state: str = "open"
) -> list[dict[str, Any]]:
    """Requests, most urgent first: `open`, `late` (a deadline passed, not done) or `all`."""
    require_staff(by, "listing requests")
    query = select(PrivacyRequest, col(Client.code)).join(
        Client, col(Client.id) == col(PrivacyRequest.client_id)
    )
    if state != "all":
        query = query.where(col(PrivacyRequest.closed_at).is_(None))
    rows = [as_dict(r, client, now) for r, client in session.execute(query).tuples()]
    if state == "late":
        rows = [r for r in rows if r["late"]]
    return sorted(rows, key=lambda r: (r["closed_at"] is not None, r["next_due_at"]))


def as_dict(request: PrivacyRequest, client: str, now: dt.datetime) -> dict[str, Any]:
    """A request as the CLI shows it: codes, kinds, instants; never its text."""
    waiting_ack = request.acknowledged_at is None and request.closed_at is None
    next_due = request.ack_due_at if waiting_ack else request.due_at
    return {
        "code": request.code,
        "client": client,
        "kind": request.kind,
        "channel": request.channel,
        "third_party": request.third_party,
        "received_at": request.received_at.isoformat(),
        "ack_due_at": request.ack_due_at.isoformat(),
        "acknowledged_at": _iso(request.acknowledged_at),
        "due_at": request.due_at.isoformat(),
        "extended": request.extended_at is not None,
        "extension_days": request.extension_days,
        "closed_at": _iso(request.closed_at),
        "outcome": request.outcome,
        "event": request.event_id,
        "next_due_at": next_due.isoformat(),
        "late": request.closed_at is None
        and (now > request.due_at or (waiting_ack and now > request.ack_due_at)),
    }


def opened_text(session: Session, request: PrivacyRequest, ctx: Context) -> dict[str, str | None]:
    """The request's sealed texts, opened (None once the client is erased)."""
    client = session.get(Client, request.client_id)
    assert client is not None
    cipher = cipher_of(session, ctx.vault, client)
    return {
        "text": cipher.decrypt(request.text_enc, "privacy.text"),
        "extension_reason": cipher.decrypt(request.extension_reason_enc, "privacy.reason"),
        "note": cipher.decrypt(request.outcome_note_enc, "privacy.note"),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def mark_alerted(session: Session, request_id: int, which: str, now: dt.datetime) -> bool:
    """Mark a request's lateness (`ack` or `due`) as escalated; False if another pass did."""
    name = "ack_alerted_at" if which == "ack" else "due_alerted_at"
    result = session.execute(
        update(PrivacyRequest)
        .where(col(PrivacyRequest.id) == request_id, col(getattr(PrivacyRequest, name)).is_(None))
        .values({name: now})
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
