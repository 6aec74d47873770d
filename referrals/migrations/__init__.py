"""Alembic migrations for the engine's tables (kept apart from Prefect's own database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["database_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_revision(connection: Any) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The revision this code expects."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def known_revision(revision: str) -> bool:
    """Whether this code's migrations include `revision` (a backup's)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config("")).get_revision(revision) is not None
    except CommandError:
        return False


def pending_revisions(current: str | None) -> list[tuple[str, str]]:
    """The migrations `referrals init` would run on a database at `current` (None: never
    migrated), oldest first, each as (revision, its title: the docstring's first paragraph).
    `current` must be a revision this code knows (`known_revision`)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config("")).iterate_revisions(
        "heads", current or "base"
    )
    return [(s.revision, " ".join((s.doc or "").split())) for s in reversed(list(scripts))]
