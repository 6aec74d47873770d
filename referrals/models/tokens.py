"""Per-user API tokens: shown once when issued, stored only as a SHA-256 hash.

A token is 256 random bits, so a plain hash is enough (no salt or slow KDF needed: there is
nothing to guess). Revoking sets `revoked_at`; the user's own `active` flag also counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlmodel import Field, Session, SQLModel, col

from referrals.models.errors import NotFound
from referrals.models.people import User
from referrals.models.types import UTCDateTime

PREFIX = "rf_"


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=80)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, username: str, name: str, now: dt.datetime) -> str:
    """A new token for an active user; the only time its clear value exists."""
    user = session.scalars(
        select(User).where(col(User.username) == username, col(User.active))
    ).first()
    if user is None:
        raise NotFound(f"no active user {username!r}")
    assert user.id is not None  # a loaded row has its id
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_hash(token), created_at=now))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a live token belongs to, or None."""
    if not token.startswith(PREFIX):
        return None
    return session.scalars(
        select(User)
        .join(ApiToken, col(ApiToken.user_id) == col(User.id))
        .where(
            col(ApiToken.token_hash) == _hash(token),
            col(ApiToken.revoked_at).is_(None),
            col(User.active),
        )
    ).first()
