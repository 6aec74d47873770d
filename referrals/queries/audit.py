"""The audit trail: events are append-only, and sealed into a keyed hash chain.

The database refuses to update or delete an event (triggers, migration 0009), so the trail
cannot be changed through the engine or by a careless SQL session. Someone who can drop the
triggers could still rewrite rows; the chain makes that visible. Each event's `chain_hash` is
HMAC-SHA256, keyed from REFERRALS_SECRET_KEY, over the previous event's hash and this event's
content, so a changed, removed or inserted event breaks every link after it, and the links
cannot be recomputed without the key.

Events are written unsealed (many writers at once, no ordering bottleneck) and sealed
afterwards by `seal()`, which the deadline sweep runs on every pass and `referrals audit verify`
runs first. The chain follows sealing order (`chain_seq`), not ids: an event whose transaction
commits after a later id was sealed simply joins the chain at the next pass. The trigger lets
the position and hash be set once on an unchanged event, never again, and `chain_seq` is
unique, so of two sealers at once one fails and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import dataclass
from typing import Any

from referrals.infra.crypto import Vault
from referrals.queries.reading import Reader

BATCH = 5000
GENESIS = "0" * 64
COLUMNS = "id, referral_id, client_id, step_id, kind, at, actor, data, chain_seq, chain_hash"


@dataclass
class Verdict:
    checked: int
    sealed: int
    unsealed: int
    first_broken: int | None = None
    why: str = ""
    head_seq: int = 0  # the last good link: worth noting down outside the database now and then
    head_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "checked": self.checked,
            "sealed": self.sealed,
            "unsealed": self.unsealed,
            "first_broken": self.first_broken,
            "why": self.why,
        }


def link(vault: Vault, previous: str, event: dict[str, Any]) -> str:
    return links(vault, previous, event)[0]


def links(vault: Vault, previous: str, event: dict[str, Any]) -> list[str]:
    """The chain hash of `event` after `previous`: HMAC over both, the event in a canonical
    form (UTC time, sorted JSON keys) that reads the same from SQLite and PostgreSQL."""
    at = event["at"]
    if isinstance(at, dt.datetime):
        at = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    data = event["data"] if isinstance(event["data"], dict) else json.loads(event["data"] or "{}")
    body = [
        event["id"],
        event["referral_id"],
        event["client_id"],
        event["step_id"],
        event["kind"],
        at,
        event["actor"],
        data,
    ]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return vault.chain_macs(previous + canonical)


def verify(reader: Reader, *, vault: Vault) -> Verdict:
    """Walk the chain in sealing order; report the first event whose link does not follow
    (changed, or after a removed or changed one), and how many events wait to be sealed."""
    previous, position = GENESIS, 0
    (waiting,) = reader.rows("SELECT COUNT(*) AS n FROM event WHERE chain_hash IS NULL")
    verdict = Verdict(checked=0, sealed=0, unsealed=int(waiting["n"]))
    while True:
        rows = reader.rows(
            f"SELECT {COLUMNS} FROM event WHERE chain_seq > :after ORDER BY chain_seq LIMIT :n",
            after=position,
            n=BATCH,
        )
        if not rows:
            return verdict
        for row in rows:
            verdict.checked += 1
            if row["chain_seq"] != position + 1:
                verdict.first_broken, verdict.why = row["id"], "an event before it is missing"
                return verdict
            found = row["chain_hash"] or ""
            if not any(hmac.compare_digest(x, found) for x in links(vault, previous, row)):
                verdict.first_broken = row["id"]
                verdict.why = "it, or an event before it, was changed"
                return verdict
            previous, position = row["chain_hash"], row["chain_seq"]
            verdict.sealed += 1
            verdict.head_seq, verdict.head_hash = position, previous
