"""API tokens: issued to an active user (shown once), and the user a live token belongs to.

The table and what is stored of a token (its hash) are in models/tokens.py.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.models.errors import NotFound
from referrals.models.people import User
from referrals.models.policy import Acting, require_role
from referrals.models.roles import Role
from referrals.models.tokens import PREFIX, ApiToken, token_hash


def issue_token(session: Session, *, username: str, name: str, by: Acting, now: dt.datetime) -> str:
    """A new token for an active user, issued by an admin; the only time its clear value
    exists."""
    require_role(by, Role.admin, doing="token create")
    user = session.scalars(
        select(User).where(col(User.username) == username, col(User.active))
    ).first()
    if user is None:
        raise NotFound(f"no active user {username!r}")
    assert user.id is not None  # a loaded row has its id
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_hash(token), created_at=now))
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
            col(ApiToken.token_hash) == token_hash(token),
            col(ApiToken.revoked_at).is_(None),
            col(User.active),
        )
    ).first()
