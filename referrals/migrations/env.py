"""Alembic environment: the URL comes from the engine's settings, the metadata from models/."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from alembic import context
from sqlmodel import SQLModel

import referrals.models.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from referrals.config import get_settings
from referrals.infra.db import get_engine
from referrals.models.types import UTCDateTime

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Migrations stay free of engine imports: UTCDateTime is a timezone-aware DateTime in SQL."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


url = context.config.attributes.get("database_url") or get_settings().database_url

with get_engine(url).connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode alters a table by copying it, dropping it and renaming the copy; with
        # foreign keys enforced (infra/db.py), dropping a table that other rows point at fails
        # (a client with referrals: migration 0010 on any office's data). Off for the migration
        # (SQLite ignores the pragma inside a transaction: this runs before the first write),
        # the keys checked before the commit, and on again for the pooled connection.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=sqlite,  # SQLite alters tables by copying them
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()  # nothing after the commit; what a failed migration left
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
