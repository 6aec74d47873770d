"""Alembic environment: the URL comes from the engine's settings, the metadata from models/."""

from alembic import context
from sqlmodel import SQLModel

import referrals.models.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from referrals.config import get_settings
from referrals.infra.db import get_engine
from referrals.models.types import UTCDateTime


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
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
