"""The one settings object: every knob the engine reads from the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_config_path, user_data_path
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "secret", "dev-secret-key"})
DEVELOPMENT_SECRET = "dev-secret-key"
BUNDLED_CONFIG = Path(__file__).parent / "khanh-hoa"
SETTINGS_FILE_VARIABLE = "REFERRALS_SETTINGS_FILE"
APP = "referrals"


def settings_file() -> Path | None:
    """The settings file this process reads besides the environment: the one named by
    REFERRALS_SETTINGS_FILE (or `referrals --settings`), else `settings.env` in the user's config
    folder if there is one. Never a file in the current folder: the installation found must not
    depend on where a command is typed."""
    named = os.environ.get(SETTINGS_FILE_VARIABLE, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ValueError(f"{SETTINGS_FILE_VARIABLE} names {path}, which is not a file")
        return path
    default = user_config_path(APP) / "settings.env"
    return default if default.is_file() else None


class NoDatabase(ValueError):
    """The settings point at no database. Only `referrals init` (and `restore`) create one: a
    command that made an empty database wherever it was typed hid the real one."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no database at {path}: create it with `referrals init`, or point "
            "REFERRALS_DATA_DIR, REFERRALS_DATABASE_URL or a settings file "
            f"({SETTINGS_FILE_VARIABLE}) at the installation's (`referrals --help` shows where "
            "it looks)"
        )


def default_data_dir() -> Path:
    """The platform's folder for an application's data (platformdirs: ~/.local/share/referrals
    on Linux, %LOCALAPPDATA%\\referrals on Windows); services set REFERRALS_DATA_DIR instead."""
    return user_data_path(APP)


class Settings(BaseSettings):
    """Read once per process from `REFERRALS_*` variables, then the settings file
    (`settings_file()`); the environment wins."""

    model_config = SettingsConfigDict(env_prefix="REFERRALS_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # The installation's files: the SQLite database (unless REFERRALS_DATABASE_URL names
    # another), period reports, imports, `serve`'s logs and Prefect state.
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    secret_key: str = Field(default=DEVELOPMENT_SECRET, repr=False)
    # Secrets used before the current one, comma-separated, while `referrals keys rotate` moves
    # the data to the current one (and for links and audit seals made with them).
    previous_secret_keys: str = Field(default="", repr=False)
    timezone: str = "Asia/Ho_Chi_Minh"
    config_dir: Path = BUNDLED_CONFIG
    public_url: str = "http://127.0.0.1:8000"
    user: str = "admin"
    # The installation's name (deploy/: one per province); names its Prefect work pool,
    # deployments and background task. Default: the province config's key (`Runtime.key`).
    province: str = ""
    # Send a queued message at once, through a Prefect background task (notifiers/at_once.py),
    # instead of waiting for the next scheduled pass. Needs a Prefect server (PREFECT_API_URL)
    # and a task worker: `referrals serve` runs both and turns this on for its processes.
    deliver_at_once: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Ho_Chi_Minh)") from None
        return value

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'referrals.db'}"
        if self.environment != "development" and (
            self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32
        ):
            raise ValueError(
                "REFERRALS_SECRET_KEY is a placeholder or shorter than 32 characters; "
                'set a random one, e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return self

    @property
    def previous_keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.previous_secret_keys.split(",") if k.strip())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, when the database is SQLite."""
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings(_env_file=settings_file())
