"""Other systems that subscribe to the engine's events (webhooks): what they want, and where.

A subscription names the event kinds it wants (`referral.*`, `step.done`, ...), the URL that
receives them, and a shared secret that signs each delivery (notifiers/webhooks.py). The
secret is sealed under REFERRALS_SECRET_KEY; it is shown once, when the subscription is made.
A subscription starts from the events written after it: history is not replayed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from referrals.models.types import UTCDateTime, utcnow


class Webhook(SQLModel, table=True):
    id: int | None = SQLField(default=None, primary_key=True)
    name: str = SQLField(unique=True, max_length=60)
    url: str = SQLField(max_length=500)
    events: list[str] = SQLField(default_factory=list, sa_type=JSON)
    secret_enc: str
    active: bool = True
    # The last event fanned out to it: the next pass starts after this one.
    after_event_id: int = 0
    created_at: dt.datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookIn(BaseModel):
    """What an admin gives; anything else is refused before anything is written."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,59}$")
    url: str = Field(max_length=500, pattern=r"^https?://[^\s/$.?#][^\s]*$")
    events: list[str] = Field(min_length=1, max_length=20)

    @field_validator("events")
    @classmethod
    def _kinds(cls, events: list[str]) -> list[str]:
        for kind in events:
            if not kind or len(kind) > 40 or not all(ch.isalnum() or ch in "._*" for ch in kind):
                raise ValueError(f"{kind!r} is not an event kind (e.g. referral.*, step.done)")
        return events


def wants(webhook: Webhook, kind: str) -> bool:
    return any(fnmatch.fnmatchcase(kind, pattern) for pattern in webhook.events)
