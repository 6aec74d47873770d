"""Moving every client's sealed details to the current key (`referrals keys rotate`).

After REFERRALS_SECRET_KEY changes (the old one listed in REFERRALS_PREVIOUS_SECRET_KEYS), each
client row still under an older key is decrypted, encrypted again under the current key and its
lookup hashes recomputed, a batch per transaction. Interrupted, it resumes where it stopped:
rows already moved no longer match. Nothing else holds personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlmodel import Session

from referrals.models.crypto import Vault
from referrals.models.people import Client

COLUMNS = ("name", "phone", "id_number")
LOOKUPS = {"phone": "phone_lookup", "id_number": "id_number_lookup"}


def _stale(vault: Vault) -> Any:
    prefix = f"{vault.key_id}:%"
    return or_(
        *(
            (getattr(Client, f"{c}_enc").is_not(None)) & ~getattr(Client, f"{c}_enc").like(prefix)
            for c in COLUMNS
        )
    )


def key_status(session: Session, vault: Vault) -> dict[str, int]:
    """How many clients are under each key id (by their name's key) and how many still need
    moving to the current key."""
    name_key = func.substr(Client.name_enc, 1, 8)
    by_key = dict(
        session.execute(
            select(name_key, func.count()).where(Client.name_enc.is_not(None)).group_by(name_key)
        ).all()
    )
    stale = session.scalar(select(func.count()).select_from(Client).where(_stale(vault)))
    return {
        "current": vault.key_id,
        "to_rotate": int(stale or 0),
        **{f"key {k}": v for k, v in by_key.items()},
    }


def rotate(
    engine: Engine,
    *,
    vault: Vault,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-encrypt every client row not yet under the current key; returns how many moved."""
    moved = 0
    while True:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            rows = list(
                s.scalars(
                    select(Client)
                    .where(_stale(vault))
                    .order_by(Client.id)
                    .limit(batch)
                    .with_for_update()
                )
            )
            for client in rows:
                for column in COLUMNS:
                    attr = f"{column}_enc"
                    value = vault.decrypt(getattr(client, attr), f"client.{column}")
                    setattr(client, attr, vault.encrypt(value, f"client.{column}"))
                    if column in LOOKUPS:
                        setattr(client, LOOKUPS[column], vault.lookup(value, column))
        if not rows:
            return moved
        moved += len(rows)
        if progress:
            progress(moved)
