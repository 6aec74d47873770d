"""Per-user API tokens: shown once when issued, stored only as a SHA-256 hash.

A token is 256 random bits, so a plain hash is enough (no salt or slow KDF needed: there is
nothing to guess). Revoking sets `revoked_at`; the user's own `active` flag also counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlmodel import Field, SQLModel

from referrals.models.types import UTCDateTime

PREFIX = "rf_"


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=80)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, enough for 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()
