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
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=url.startswith("sqlite"),  # SQLite alters tables by copying them
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
