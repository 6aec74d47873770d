"""The one settings object: every knob the engine reads from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "secret", "dev-secret-key"})
DEVELOPMENT_SECRET = "dev-secret-key"
BUNDLED_CONFIG = Path(__file__).parent / "khanh-hoa"


class Settings(BaseSettings):
    """Read once per process from `REFERRALS_*` variables (and a `.env` file if present)."""

    model_config = SettingsConfigDict(env_prefix="REFERRALS_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
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
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'referrals.db').resolve()}"
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
