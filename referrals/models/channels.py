"""What a channel keeps between sends: a gateway's rotating credentials (issue 24).

Zalo's OA refresh token is single-use: each refresh answers a new one, and the old one is dead.
The first comes from the operator (environment or Prefect Secret block); every later one is
kept here, sealed under the office's key, so every worker of a cluster uses the newest and a
restart does not fall back to a spent token.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from referrals.models.types import UTCDateTime


class ChannelSecret(SQLModel, table=True):
    __tablename__ = "channel_secret"

    key: str = Field(primary_key=True, max_length=100)  # e.g. "zns:<app id>"
    value_enc: str  # the JSON value, sealed (Vault, column "channel_secret.value")
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)
