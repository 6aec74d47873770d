"""Sealing the audit trail: unsealed events join the keyed hash chain, a batch at a time.

What the chain is and how it is checked: `queries/audit.py`.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from referrals.infra.crypto import Vault
from referrals.queries.audit import BATCH, COLUMNS, GENESIS, link
from referrals.queries.reading import Reader


def seal(engine: Engine, *, vault: Vault) -> int:
    """Seal every unsealed event, a batch per transaction; returns how many."""
    sealed = 0
    while True:
        with engine.begin() as c:
            last = c.execute(
                text(
                    "SELECT chain_seq, chain_hash FROM event WHERE chain_seq IS NOT NULL"
                    " ORDER BY chain_seq DESC LIMIT 1"
                )
            ).first()
            reader = Reader(c.connection.dbapi_connection, engine.dialect.name)
            rows = reader.rows(
                f"SELECT {COLUMNS} FROM event WHERE chain_hash IS NULL ORDER BY id LIMIT :n",
                n=BATCH,
            )
            if not rows:
                return sealed
            seq, previous = (last[0], last[1]) if last else (0, GENESIS)
            updates = []
            for row in rows:
                seq, previous = seq + 1, link(vault, previous, row)
                updates.append({"id": row["id"], "seq": seq, "hash": previous})
            c.execute(
                text(
                    "UPDATE event SET chain_seq = :seq, chain_hash = :hash"
                    " WHERE id = :id AND chain_hash IS NULL"
                ),
                updates,
            )
            sealed += len(rows)
