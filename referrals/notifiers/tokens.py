"""The plugins' rotating credentials kept in the engine's database, sealed (plugins/base.py).

`update` takes the row's write lock before it reads (an UPDATE that changes nothing: a row lock
on PostgreSQL, the database's write lock on SQLite), so two senders that find the access token
expired refresh it once, one after the other: the second reads the token the first stored.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from referrals.infra.crypto import Vault
from referrals.infra.db import is_postgres, transaction
from referrals.models.channels import ChannelSecret
from referrals.notifiers.plugins.base import Change

COLUMN = "channel_secret.value"


class DatabaseTokens:
    """A TokenStore on the `channel_secret` table, read once per pass: what it read or wrote is
    kept in memory (a ZNS plugin asks for its access token before every message; a database
    round trip each time cost Zalo a quarter of its rate in benchmarks/bench_deliver.py). A
    token Zalo refuses is refreshed through `update`, which always reads the table under its
    lock, so a newer token another worker stored is found there."""

    def __init__(self, engine: Engine, vault: Vault) -> None:
        self.engine = engine
        self.vault = vault
        self._seen: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key in self._seen:
                value = self._seen[key]
                return dict(value) if value is not None else None
        with transaction(self.engine) as s:
            sealed = s.scalar(
                select(col(ChannelSecret.value_enc)).where(col(ChannelSecret.key) == key)
            )
        return self._keep(key, self._open(sealed))

    def _keep(self, key: str, value: dict[str, Any] | None) -> dict[str, Any] | None:
        with self._lock:
            self._seen[key] = dict(value) if value is not None else None
        return value

    def update(self, key: str, change: Change) -> dict[str, Any] | None:
        self._ensure(key)
        with transaction(self.engine) as s:
            lock = update(ChannelSecret).where(col(ChannelSecret.key) == key)
            s.connection().execute(lock.values(updated_at=col(ChannelSecret.updated_at)))
            row = s.get(ChannelSecret, key)
            assert row is not None  # _ensure made it
            current = self._open(row.value_enc)
            new = change(current)
            if new is None:
                return self._keep(key, current)
            row.value_enc = self.vault.encrypt(json.dumps(new), COLUMN) or ""
            row.updated_at = dt.datetime.now(dt.UTC)
        return self._keep(key, dict(new))

    def _ensure(self, key: str) -> None:
        """The key's row exists (empty at first), so that the first refresh, too, has a row to
        lock: two senders that both found no row would both spend the first refresh token."""
        with transaction(self.engine) as s:
            insert = pg_insert if is_postgres(s) else sqlite_insert
            s.execute(
                insert(ChannelSecret)
                .values(key=key, value_enc="", updated_at=dt.datetime.now(dt.UTC))
                .on_conflict_do_nothing(index_elements=["key"])
            )

    def _open(self, sealed: str | None) -> dict[str, Any] | None:
        if not sealed:
            return None
        value = json.loads(self.vault.decrypt(sealed, COLUMN) or "null")
        return value if isinstance(value, dict) else None
