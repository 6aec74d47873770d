"""One process's view of the engine: settings, the database engine, the province, the context."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from referrals.config import Province, Settings, get_settings, load_province
from referrals.config.settings import NoDatabase
from referrals.infra.db import get_engine
from referrals.models.errors import NotFound
from referrals.models.people import User

if TYPE_CHECKING:
    from referrals.infra.context import Context


_CURRENT: dict[str, Runtime] = {}


@dataclass
class Runtime:
    settings: Settings = field(default_factory=get_settings)
    # Only `referrals init` and `restore` may create the database (a SQLite file and its folder);
    # every other process refuses to start on a missing one (settings.NoDatabase).
    create: bool = False

    @cached_property
    def engine(self) -> Engine:
        path = self.settings.sqlite_path
        if self.create:  # the data folder, and a SQLite file's folder if elsewhere
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        elif path is not None and not path.is_file():
            raise NoDatabase(path)
        return get_engine(self.settings.database_url)

    @cached_property
    def province(self) -> Province:
        return load_province(self.settings.config_dir)

    @property
    def key(self) -> str:
        """The installation's name: REFERRALS_PROVINCE, else the province config's key. Prefect
        names after it what each installation must not share (pool, deployments, tasks)."""
        return self.settings.province or self.province.province.key

    @cached_property
    def ctx(self) -> Context:
        from referrals.infra.context import Context  # the calendar and the vault: only for writes

        return Context.build(self.settings, self.province)

    @classmethod
    def current(cls) -> Runtime:
        """One runtime per settings object, for long-lived processes (the web app): its engine,
        province and calendar (with its memo of working days) are built once, not per request."""
        settings = get_settings()
        hit = _CURRENT.get("runtime")
        if hit is None or hit.settings is not settings:
            hit = _CURRENT["runtime"] = cls(settings)
        return hit

    def user(self, session: Session, username: str | None = None) -> User:
        name = username or self.settings.user
        user = session.scalars(
            select(User).where(col(User.username) == name, col(User.active))
        ).first()
        if user is None:
            raise NotFound(f"no active user {name!r} (set REFERRALS_USER or run `referrals init`)")
        return user
