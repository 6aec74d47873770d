"""Merging two records of one person (issue 19): `referrals client merge KEEP OTHER`, the
managers' form on a client's page.

What moves, and what does not, follows from how the rows are kept:

- **Referrals and consents move** to the kept client (their `client_id` is rewritten). They are
  ordinary rows, and everything that counts or checks per client reads them by `client_id`: the
  period report counts people as distinct `referral.client_id` (queries/report.py), so the pair
  counts as one person as soon as the referrals move, with no change to the report's SQL (a
  past period's report changes too: it now counts the person once, which is the point). A
  referral keeps its `area_key` (the client's district at launch), and its version is bumped
  (the ORM's version column), so someone acting on it at the same moment loses the race.
- **Events do not move.** The timeline is append-only and sealed into a keyed hash chain whose
  links cover each event's `client_id` (queries/audit.py `links`); the database refuses any
  change to an event (triggers, migration 0009), and rewriting one would break every link after
  it. So the other record becomes a **tombstone** (`client.merged_into_id`, `merged_at`) and a
  person's history is read through it: queries/views.py `client_events` and the export
  (usecases/clients/subject.py) read the kept client's events and their tombstones'. A referral's
  own events follow the referral, which moved. Both records get a `client.merged` event.
- **The tombstone keeps its data key** (`client_key`). Its details and the notes written about it
  (a partner's note on a referral it had, the reason it was registered as a different person)
  are sealed under that key in rows that cannot change (events) or need not (its own details):
  re-sealing under the kept client's key is impossible for the events and would lose nothing
  only for the rest. Keeping the key keeps all of it readable; the export opens each note with
  whichever of the person's keys sealed it, and erasing the kept client shreds the tombstones'
  keys with theirs (subject.py), so erasure still reaches everything about the person.
- **Always one hop.** Clients already merged into OTHER are re-pointed to KEEP, so every reader
  follows one link, never a chain.

Refused, with nothing written: a client merged with itself, an erased client, a tombstone (on
either side: "merged into C-…"), clients of a district a coordinator does not work in (as if
absent, like every other refusal of the policy), and two clients with an open referral for the
same service (one open referral per client and service: close or cancel one first). Who may
merge: a coordinator, both clients in their district; a manager or an admin, anywhere.

Two merges at once: both rows are locked (`FOR UPDATE`, in id order so two merges cannot
deadlock) on PostgreSQL, and the tombstone is claimed by a guarded UPDATE, the first write of
the transaction (on SQLite it takes the database's write lock, after which the state is read
again); whoever comes second is refused (`Conflict`, a 409) or, once the first has committed,
told what it did ("already merged into C-…").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlmodel import Session, col

from referrals.infra.client_keys import sealing_cipher
from referrals.infra.context import Context
from referrals.models import policy
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.lifecycle import OPEN
from referrals.models.people import Client, Consent, User, actor_name
from referrals.models.roles import Role
from referrals.models.workflow import Event, PathwayVersion, Referral

CODE = r"^[A-Za-z0-9-]{1,20}$"


class MergeRefused(DomainError):
    """A merge that must not happen (the same client twice, an erased client, a clash of open
    referrals); nothing was written."""


class MergedClient(DomainError):
    """The client is a tombstone: whatever was asked belongs to the client it was merged into,
    which the refusal names (params `client`, `into`)."""


class MergeIn(BaseModel):
    """A merge as asked: KEEP stays, OTHER becomes its tombstone; `reason` (optional free text)
    is sealed under KEEP's data key like any note about a client."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    keep: str = Field(pattern=CODE)
    other: str = Field(pattern=CODE)
    reason: str | None = Field(default=None, min_length=3, max_length=300)

    @field_validator("keep", "other", mode="after")
    @classmethod
    def _code(cls, value: str) -> str:
        """Codes are upper case; a person may type them in lower case."""
        return value.upper()

    @field_validator("reason", mode="after")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        """Lines as a form's text box sends them (CRLF), spaces folded; no other control
        character (a NUL, an escape) belongs in a note."""
        if value is None:
            return None
        value = value.replace("\r\n", "\n")
        if any(unicodedata.category(ch) == "Cc" for ch in value if ch not in "\n\t"):
            raise ValueError("a reason has no control characters")
        return unicodedata.normalize("NFC", re.sub(r"[ \t]+", " ", value))


@dataclass(frozen=True)
class Merged:
    """What a merge did: the codes, the referrals moved, how many consents, the older
    tombstones re-pointed to the kept client."""

    kept: str
    merged: str
    referrals: list[str]
    consents: int
    repointed: list[str]
    at: dt.datetime

    def as_dict(self, tz: dt.tzinfo = dt.UTC) -> dict[str, Any]:
        """As `--json` prints it: the moment with the office's offset."""
        return {
            "kept": self.kept,
            "merged": self.merged,
            "referrals": self.referrals,
            "consents": self.consents,
            "repointed": self.repointed,
            "merged_at": self.at.astimezone(tz).isoformat(),
        }


def merge_clients(
    session: Session, *, data: MergeIn, by: User | None, ctx: Context, now: dt.datetime
) -> Merged:
    """Merge client `data.other` into `data.keep` (see the module's docstring); `by` None is
    the engine itself (a test's setup)."""
    if data.keep == data.other:
        raise MergeRefused(f"client {data.keep} cannot be merged with itself", key="merge_same")
    keep, other = _locked(
        session, _visible(session, by, data.keep), _visible(session, by, data.other)
    )
    _refuse_states(session, keep, other)
    _refuse_open_clash(session, keep, other)
    _claim(session, keep, other, now)
    moved = _move_referrals(session, keep, other)
    consents = _move_consents(session, keep, other)
    repointed = _repoint(session, keep, other)
    done = Merged(keep.code, other.code, moved, consents, repointed, now)
    _record(session, keep, other, done, data.reason, by, ctx)
    return done


def _visible(session: Session, by: User | None, code: str) -> Client:
    """Client `code`, if `by` may merge it: a coordinator in their own district (another
    district's client is "unknown", as the policy answers everywhere), a manager or admin in
    any district."""
    client = session.scalars(select(Client).where(col(Client.code) == code)).first()
    if client is None:
        raise NotFound(f"unknown client {code!r}", key="unknown_client")
    if by is not None:
        policy.require_role(by, Role.coordinator, Role.manager, Role.admin, doing="client merge")
        if by.role == Role.coordinator.value:
            policy.require_area(by, client.area_key, what=f"client {code!r}")
    return client


def _locked(session: Session, keep: Client, other: Client) -> tuple[Client, Client]:
    """Both rows, locked in id order (two merges of the same pair cannot deadlock) and read
    again: what was read before the lock may have changed."""
    rows = session.scalars(
        select(Client)
        .where(col(Client.id).in_([keep.id, other.id]))
        .order_by(col(Client.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    by_id = {c.id: c for c in rows}
    return by_id[keep.id], by_id[other.id]


def kept_codes(session: Session, clients: Iterable[Client]) -> dict[int, str]:
    """For the tombstones among `clients`: merged_into_id -> the kept client's code."""
    ids = sorted({c.merged_into_id for c in clients if c.merged_into_id is not None})
    if not ids:
        return {}
    rows = session.execute(select(col(Client.id), col(Client.code)).where(col(Client.id).in_(ids)))
    return dict(rows.tuples().all())


def refuse_if_merged(client: Client, kept: dict[int, str]) -> None:
    """A tombstone is not acted on: the refusal names the client it was merged into (`kept`
    from `kept_codes`)."""
    if client.merged_into_id is None:
        return
    into = kept.get(client.merged_into_id, "another client")
    raise MergedClient(
        f"client {client.code} was merged into {into}: use {into}",
        key="merged",
        client=client.code,
        into=into,
    )


def _refuse_states(session: Session, keep: Client, other: Client) -> None:
    """Neither may be a tombstone (named with the client it went into) nor erased."""
    kept = kept_codes(session, [keep, other])
    refuse_if_merged(keep, kept)
    refuse_if_merged(other, kept)
    for client in (keep, other):
        if client.erased_at is not None:
            raise MergeRefused(
                f"client {client.code}'s personal data was erased: an erased client is not merged",
                key="merge_erased",
                client=client.code,
            )


def _refuse_open_clash(session: Session, keep: Client, other: Client) -> None:
    """Both open for one service would be two open referrals of one client and service, which
    the launch refuses and a unique index forbids: one must be closed first."""
    rows = session.execute(
        select(col(Referral.pathway_key), col(Referral.code), col(Referral.client_id))
        .where(
            col(Referral.client_id).in_([keep.id, other.id]), col(Referral.status).in_(sorted(OPEN))
        )
        .order_by(col(Referral.pathway_key), col(Referral.id))
    ).tuples()
    by_pathway: dict[str, dict[int, str]] = {}
    for pathway, code, client_id in rows:
        by_pathway.setdefault(pathway, {})[client_id] = code
    for pathway, codes in by_pathway.items():
        if len(codes) > 1:
            both = f"{codes[keep.id or 0]}, {codes[other.id or 0]}"
            raise MergeRefused(
                f"both clients have an open {pathway} referral ({both}): close or cancel one first",
                key="merge_both_open",
                pathway=_pathway_name(session, pathway),
                referrals=both,
            )


def _pathway_name(session: Session, key: str) -> str:
    name = session.scalars(
        select(col(PathwayVersion.name))
        .where(col(PathwayVersion.key) == key)
        .order_by(col(PathwayVersion.version).desc())
    ).first()
    return name or key


def _claim(session: Session, keep: Client, other: Client, now: dt.datetime) -> None:
    """Make OTHER the tombstone, if it is still neither merged nor erased as this write sees
    it; then read KEEP again. The guarded UPDATE is the transaction's first write: on SQLite it
    waits for the write lock, and what it sees (and everything read after it) is current."""
    claimed = session.execute(
        update(Client)
        .where(
            col(Client.id) == other.id,
            col(Client.merged_into_id).is_(None),
            col(Client.erased_at).is_(None),
        )
        .values(merged_into_id=keep.id, merged_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(keep)
    session.refresh(other)
    lost = getattr(claimed, "rowcount", 1) != 1
    if lost or keep.merged_into_id is not None or keep.erased_at is not None:
        raise Conflict(
            f"client {keep.code} or {other.code} was changed at the same moment; nothing was "
            "saved: look again",
            key="merge_conflict",
        )


def _move_referrals(session: Session, keep: Client, other: Client) -> list[str]:
    """Every referral of OTHER, open or closed, now KEEP's; each row locked and its version
    bumped (the ORM's version column), so a concurrent action on it loses the race."""
    refs = session.scalars(
        select(Referral)
        .where(col(Referral.client_id) == other.id)
        .order_by(col(Referral.id))
        .with_for_update()
    ).all()
    assert keep.id is not None  # a loaded row has its id
    for referral in refs:
        referral.client_id = keep.id
    session.flush()
    return [r.code for r in refs]


def _move_consents(session: Session, keep: Client, other: Client) -> int:
    """OTHER's consents (active and withdrawn, as recorded) now KEEP's: the launch checks
    consent by client."""
    moved = session.execute(
        update(Consent)
        .where(col(Consent.client_id) == other.id)
        .values(client_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(moved, "rowcount", 0) or 0)


def _repoint(session: Session, keep: Client, other: Client) -> list[str]:
    """Clients merged into OTHER earlier now point at KEEP: one hop, always."""
    codes = list(
        session.scalars(
            select(col(Client.code))
            .where(col(Client.merged_into_id) == other.id)
            .order_by(col(Client.id))
        )
    )
    if codes:
        session.execute(
            update(Client)
            .where(col(Client.merged_into_id) == other.id)
            .values(merged_into_id=keep.id)
            .execution_options(synchronize_session=False)
        )
    return codes


def _record(
    session: Session,
    keep: Client,
    other: Client,
    done: Merged,
    reason: str | None,
    by: User | None,
    ctx: Context,
) -> None:
    """A `client.merged` event on each record (codes only), the kept one's with what moved and
    the reason sealed under the kept client's data key (the export opens it as a note)."""
    both = {"kept": keep.code, "merged": other.code}
    on_kept: dict[str, Any] = {
        **both,
        "referrals": done.referrals,
        "consents": done.consents,
        "repointed": done.repointed,
    }
    if reason:
        on_kept["note_enc"] = sealing_cipher(session, ctx.vault, keep).encrypt(reason, "event.note")
    actor = actor_name(by)
    session.add(
        Event(client_id=keep.id, kind="client.merged", at=done.at, actor=actor, data=on_kept)
    )
    session.add(Event(client_id=other.id, kind="client.merged", at=done.at, actor=actor, data=both))
    session.flush()


def tombstones_of(session: Session, client: Client) -> list[Client]:
    """The clients merged into `client` (one hop: see `_repoint`), oldest first."""
    return list(
        session.scalars(
            select(Client).where(col(Client.merged_into_id) == client.id).order_by(col(Client.id))
        )
    )
