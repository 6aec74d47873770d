"""What must always hold in the engine's database, checked in SQL (`referrals check`, `doctor`).

The tests run it after crashes, concurrent workers and a backup restore: whatever happened to
the processes, the data must still tell one consistent story. Each rule is a query for the rows
that break it, so a failure names them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from referrals.infra.crypto import Vault
from referrals.models.lifecycle import CLOSED, LEFT, OPEN, WORKING, MessageStatus, ReferralStatus
from referrals.models.lifecycle import StepStatus as T
from referrals.queries.audit import verify
from referrals.queries.reading import Reader


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


FINISHED = LEFT | {MessageStatus.dead, MessageStatus.cancelled}

# rule -> (what it means, the SQL selecting the ids that break it)
RULES: dict[str, tuple[str, str]] = {
    "referral status is known": (
        "every referral is in a lifecycle status",
        f"SELECT id FROM referral WHERE status NOT IN {_in(ReferralStatus)}",
    ),
    "closed referrals have closed_at": (
        "a closed referral says when, an open one does not",
        f"SELECT id FROM referral WHERE (status IN {_in(CLOSED)} AND closed_at IS NULL)"
        f" OR (status IN {_in(OPEN)} AND closed_at IS NOT NULL)",
    ),
    "a working referral has one active step": (
        "requested, accepted and in-progress referrals wait on exactly one step",
        f"SELECT r.id FROM referral r WHERE r.status IN {_in(WORKING)} AND (SELECT COUNT(*) FROM"
        f" step s WHERE s.referral_id = r.id AND s.status = '{T.active}') != 1",
    ),
    "a closed referral has no active step": (
        "nothing waits on a partner once the referral is closed",
        f"SELECT DISTINCT s.referral_id FROM step s JOIN referral r ON r.id = s.referral_id"
        f" WHERE r.status IN {_in(CLOSED)} AND s.status = '{T.active}'",
    ),
    "finished steps say when": (
        "done and failed steps have completed_at; pending ones are not due yet",
        f"SELECT id FROM step WHERE (status IN ('{T.done}', '{T.failed}') AND completed_at IS NULL)"
        f" OR status NOT IN {_in(T)}",
    ),
    "messages are in a known status": (
        "every outbox row is in a status of the message lifecycle",
        f"SELECT id FROM notification WHERE status NOT IN {_in(MessageStatus)}",
    ),
    "sent messages say when, once": (
        "sent_at is set exactly for messages that were sent, with at least one attempt",
        f"SELECT id FROM notification WHERE (status IN {_in(LEFT)})"
        f" != (sent_at IS NOT NULL) OR (status IN {_in(LEFT)} AND attempts < 1)",
    ),
    "finished messages hold no lease": (
        "no worker still holds a message that was sent, is dead or was cancelled",
        f"SELECT id FROM notification WHERE status IN {_in(FINISHED)} AND lease_token IS NOT NULL",
    ),
    "erased clients hold nothing personal": (
        "an erased client has no details, lookups or data key",
        "SELECT c.id FROM client c WHERE c.erased_at IS NOT NULL AND (c.name_enc IS NOT NULL"
        " OR c.phone_enc IS NOT NULL OR c.id_number_enc IS NOT NULL OR c.phone_lookup IS NOT NULL"
        " OR c.id_number_lookup IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM client_key k WHERE k.client_id = c.id))",
    ),
    "clients' details have their data key": (
        "details sealed under a data key that is missing (restored without the keys backup)",
        "SELECT c.id FROM client c WHERE c.erased_at IS NULL AND substr(c.name_enc, 1, 2) = 'k:'"
        " AND NOT EXISTS (SELECT 1 FROM client_key k WHERE k.client_id = c.id)",
    ),
    "clients have a name until erased": (
        "every client not erased has their sealed name",
        "SELECT id FROM client WHERE erased_at IS NULL AND name_enc IS NULL",
    ),
}
SAMPLE = 5


@dataclass
class Broken:
    rule: str
    meaning: str
    count: int
    ids: list[int] = field(default_factory=list)


def check(reader: Reader, *, vault: Vault | None = None) -> list[Broken]:
    """Every rule's breaches (empty when all hold); with the vault, the audit chain too."""
    broken = []
    for rule, (meaning, sql) in RULES.items():
        ids = [int(next(iter(r.values()))) for r in reader.rows(sql)]
        if ids:
            broken.append(Broken(rule, meaning, len(ids), sorted(ids)[:SAMPLE]))
    if vault is not None:
        verdict = verify(reader, vault=vault)
        if not verdict.ok:
            meaning = f"the sealed events follow each other ({verdict.why})"
            ids = [verdict.first_broken] if verdict.first_broken else []
            broken.append(Broken("the audit chain holds", meaning, 1, ids))
    return broken
