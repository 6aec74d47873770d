"""Finding a client by a word of their name, a phone, an ID number, or a client's or referral's
code, within what the searcher may see, and indexing names so that this works.

Names are sealed per client, so SQL cannot read them: each word of a name is indexed as a keyed
hash (models/search.py), and a search hashes the words typed. "nguyen thi lan" finds
"Nguyễn Thị Lan" because both sides are folded the same way (`words`). A phone is matched in any
form the phone parser reads, an ID number by its digits, both through the keyed lookup hashes
clients already have. Results are the searcher's scope only (a coordinator's district), newest
activity first; each client whose name a result list shows gets a `pii.listed` event on their
timeline, as opening their details gives `pii.viewed`: who saw a name is always on record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rapidfuzz.distance import Levenshtein
from sqlalchemy import (
    CompoundSelect,
    Engine,
    Select,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    type_coerce,
    union,
)
from sqlmodel import Session, col

from referrals.config.fields import e164
from referrals.infra.client_keys import cipher_of
from referrals.infra.context import Context
from referrals.infra.crypto import Vault
from referrals.models import policy
from referrals.models.directory import Area
from referrals.models.errors import DomainError
from referrals.models.lifecycle import OPEN
from referrals.models.people import Client, User, actor_name
from referrals.models.search import ClientTerm
from referrals.models.types import UTCDateTime
from referrals.models.workflow import Event, Referral

CODE = re.compile(r"^[CR]-?[0-9A-Z]{5}-?[0-9A-Z]{5}$")
NUMBER = re.compile(r"^[+()\d\s.-]+$")
Ids = Select[Any] | CompoundSelect[Any]  # a query of client ids
LIMIT = 20  # a person reads a short list; a longer one means the words were too few


def words(name: str | None) -> list[str]:
    """A name's words folded to plain lower-case letters and digits, each once, in order:
    accents dropped (NFD, then the combining marks), đ as d, anything else a separator."""
    if not name:
        return []
    plain = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return list(dict.fromkeys(re.findall(r"[a-z0-9]+", plain)))


def name_terms(vault: Vault, name: str | None) -> list[str]:
    """The index terms of a name under the current secret: one keyed hash per word."""
    return [h for h in (vault.lookup(w, "name") for w in words(name)) if h]


def name_key(vault: Vault, name: str | None) -> str | None:
    """The whole name as one keyed hash, its folded words sorted: "Nguyễn Thị Lan" and "lan
    nguyen thi" are one key (the current secret's; `name_keys` for every secret's)."""
    return next(iter(name_keys(vault, name)), None)


def name_keys(vault: Vault, name: str | None) -> list[str]:
    return vault.lookups(" ".join(sorted(words(name))), "name") if words(name) else []


def index_name(session: Session, vault: Vault, client_id: int, name: str | None) -> None:
    """(Re)index one client's name: their old words go, the name's words come."""
    session.execute(delete(ClientTerm).where(col(ClientTerm.client_id) == client_id))
    terms = name_terms(vault, name)
    if terms:
        session.execute(insert(ClientTerm), [{"term": t, "client_id": client_id} for t in terms])


def index_missing(engine: Engine, vault: Vault, batch: int = 500) -> int:
    """Index every client with a name and no index yet (after the upgrade that added the index,
    or a restore); `referrals init` runs it. Returns how many were indexed."""
    done = 0
    unindexed = ~exists().where(col(ClientTerm.client_id) == col(Client.id))
    while True:
        with Session(engine) as s, s.begin():
            clients = list(
                s.scalars(
                    select(Client)
                    .where(col(Client.name_enc).is_not(None), unindexed)
                    .order_by(col(Client.id))
                    .limit(batch)
                )
            )
            for c in clients:
                assert c.id is not None  # a loaded row
                index_name(
                    s, vault, c.id, cipher_of(s, vault, c).decrypt(c.name_enc, "client.name")
                )
        if len(clients) < batch:
            return done + len(clients)
        done += len(clients)


CANDIDATES = 1000  # the most recent clients sharing the words, read to compare spellings


def likely_same(session: Session, vault: Vault, name: str, district: str) -> list[Client]:
    """Clients of `district` who are likely the person named `name`: the same words once
    folded (any order), or, for a name of three words or more, the same number of words with
    all but one shared and that one a single edit away ("Lan"/"Lam", "Thi"/"Thy").

    Only clients sharing the words are read (the index narrows them; their names are
    decrypted, a few microseconds each); no birth year is held to narrow it further."""
    typed = words(name)
    if not typed:
        return []
    needed = len(typed) if len(typed) < 3 else len(typed) - 1
    hashes = [h for w in typed for h in vault.lookups(w, "name")]
    sharing = (
        select(col(ClientTerm.client_id))
        .where(col(ClientTerm.term).in_(hashes))
        .group_by(col(ClientTerm.client_id))
        .having(func.count() >= needed)
    )
    candidates = session.scalars(
        select(Client)
        .where(
            col(Client.id).in_(sharing),
            col(Client.area_key) == district,
            col(Client.erased_at).is_(None),
            col(Client.merged_into_id).is_(None),
        )
        .order_by(col(Client.id).desc())
        .limit(CANDIDATES)
    )
    return [
        c
        for c in candidates
        if _alike(typed, words(cipher_of(session, vault, c).decrypt(c.name_enc, "client.name")))
    ]


def _alike(typed: list[str], known: list[str]) -> bool:
    if sorted(typed) == sorted(known):
        return True
    if len(typed) != len(known) or len(typed) < 3:
        return False
    differ = [(a, b) for a, b in zip(typed, known, strict=True) if a != b]
    return len(differ) == 1 and Levenshtein.distance(*differ[0]) <= 1


class SearchIn(BaseModel):
    """What was typed in the search box: a few words, a number or a code."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str = Field(min_length=2, max_length=120)


@dataclass(frozen=True)
class Found:
    code: str
    name: str | None  # None once erased
    district: str
    district_name: str
    open_referrals: int
    last_activity: dt.datetime


def find_clients(
    session: Session, *, by: User, text: str, ctx: Context, now: dt.datetime, via: str
) -> list[Found]:
    """The clients `by` may see that match `text`, newest activity first (at most LIMIT); each
    shown with a name is recorded as seen by `by` (through `via`: web, api or cli)."""
    try:
        q = SearchIn(q=text).q
    except ValidationError:
        q = ""
    ids = _matching(session, ctx.vault, q) if q else None
    if ids is None:
        raise DomainError(
            "type a whole word of the name, a phone or ID number, or a code (2 to 120 characters)",
            key="search_empty",
        )
    # A merged record's code, phone or ID number finds the client it was merged into.
    kept = select(func.coalesce(col(Client.merged_into_id), col(Client.id))).where(
        col(Client.id).in_(ids)
    )
    found = _in_scope(session, ctx.vault, by, kept)
    _record_listed(session, by, found, now=now, via=via)
    return found


def _matching(session: Session, vault: Vault, q: str) -> Ids | None:
    """The ids of the clients whose code, phone, ID number or name words match `q`."""
    upper = q.upper().replace(" ", "")
    if CODE.match(upper):
        code = upper if "-" in upper else f"{upper[0]}-{upper[1:6]}-{upper[6:]}"
        return union(
            select(col(Client.id)).where(col(Client.code) == code),
            select(col(Referral.client_id)).where(col(Referral.code) == code),
        )
    if NUMBER.match(q) and sum(ch.isdigit() for ch in q) >= 9:
        return _by_number(vault, q)
    typed = words(q)
    if not typed:
        return None
    per_key = [
        select(col(ClientTerm.client_id))
        .where(col(ClientTerm.term).in_(hashes))
        .group_by(col(ClientTerm.client_id))
        .having(func.count() == len(typed))
        for hashes in _hashes_per_key(vault, typed)
    ]
    return per_key[0].union(*per_key[1:]) if len(per_key) > 1 else per_key[0]


def _hashes_per_key(vault: Vault, typed: list[str]) -> list[list[str]]:
    """The words' hashes under each secret (a rotation may not have reached every client)."""
    each = [vault.lookups(w, "name") for w in typed]
    return [[hashes[k] for hashes in each] for k in range(len(each[0]))]


def _by_number(vault: Vault, q: str) -> Ids:
    digits = "".join(ch for ch in q if ch.isdigit())
    wanted = []
    if len(digits) in (9, 12):
        wanted.append(col(Client.id_number_lookup).in_(vault.lookups(digits, "id_number")))
    with contextlib.suppress(ValueError):  # not a phone number: an ID number only
        wanted.append(
            col(Client.phone_lookup).in_(
                vault.lookups(e164(("+" if q.startswith("+") else "") + digits), "phone")
            )
        )
    return select(col(Client.id)).where(or_(*wanted) if wanted else false())


def _in_scope(session: Session, vault: Vault, by: User, ids: Ids) -> list[Found]:
    last = (
        select(func.max(func.coalesce(col(Referral.updated_at), col(Referral.launched_at))))
        .where(col(Referral.client_id) == col(Client.id))
        .scalar_subquery()
    )
    activity = type_coerce(func.coalesce(last, col(Client.created_at)), UTCDateTime)
    query = (
        select(Client, col(Area.name), activity)
        .join(Area, col(Area.key) == col(Client.area_key))
        .where(col(Client.id).in_(ids), col(Client.merged_into_id).is_(None))
        .order_by(activity.desc(), col(Client.id).desc())
        .limit(LIMIT)
    )
    scope = policy.district_scope(by)
    if scope is not None:
        query = query.where(col(Client.area_key).in_(policy.area_scope(scope)))
    rows = list(session.execute(query).tuples())
    opened = _open_counts(session, [c.id for c, _, _ in rows if c.id is not None])
    return [
        Found(
            code=c.code,
            name=cipher_of(session, vault, c).decrypt(c.name_enc, "client.name"),
            district=c.area_key,
            district_name=area_name,
            open_referrals=opened.get(c.id or 0, 0),
            last_activity=at,
        )
        for c, area_name, at in rows
    ]


def _open_counts(session: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    query = (
        select(col(Referral.client_id), func.count())
        .where(col(Referral.client_id).in_(ids), col(Referral.status).in_(sorted(OPEN)))
        .group_by(col(Referral.client_id))
    )
    return dict(session.execute(query).tuples().all())


def _record_listed(
    session: Session, by: User, found: Iterable[Found], *, now: dt.datetime, via: str
) -> None:
    codes = [f.code for f in found if f.name]
    if not codes:
        return
    ids = session.execute(select(col(Client.id)).where(col(Client.code).in_(codes))).scalars()
    session.add_all(
        Event(
            client_id=client_id,
            kind="pii.listed",
            at=now,
            actor=actor_name(by),
            data={"fields": ["name"], "via": via},
        )
        for client_id in ids
    )
