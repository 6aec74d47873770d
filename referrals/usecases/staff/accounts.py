"""Staff accounts for the web pages: scrypt password hashes, lockout, and session epochs.

scrypt (RFC 7914, in the standard library) is memory-hard: n=2**14, r=8 costs 16 MiB and about
50 ms per guess. After `MAX_FAILURES` wrong passwords in a row an account is locked for
`LOCKOUT`; a locked account answers exactly as a wrong password does (the lock is in the audit
events and on the admin page), so it can be used neither to test guesses nor to find names.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select, update
from sqlmodel import Session, col

from referrals.config.province import Email
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Role, User, actor_name
from referrals.models.policy import Acting, actor_of, require_role
from referrals.models.workflow import Event
from referrals.usecases.clients.clients import require_area

N, R, P = 2**14, 8, 1
MIN_LENGTH = 10
MAX_LENGTH = 200
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)


class UserIn(BaseModel):
    """A new staff account as an admin types it (CLI or web)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(pattern=r"^[a-z0-9_.-]{2,60}$")
    full_name: str = Field(min_length=1, max_length=120)
    role: Role
    district: str | None = Field(default=None, max_length=60)
    email: Email | None = None

    @model_validator(mode="after")
    def _district_for_coordinators(self) -> UserIn:
        if self.role == Role.coordinator and not self.district:
            raise ValueError("a coordinator works in one district: give --district")
        if self.role != Role.coordinator:
            self.district = None
        return self


class LoginRefused(DomainError):
    """Wrong name or password, or a locked account; `why` is "credentials" or "locked"."""

    def __init__(self, why: str) -> None:
        super().__init__(f"login refused: {why}", key=f"login_{why}")
        self.why = why


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise DomainError(
            f"a password needs at least {MIN_LENGTH} characters", key="password_short"
        )
    if len(password) > MAX_LENGTH:
        raise DomainError(f"a password has at most {MAX_LENGTH} characters", key="password_long")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
    except ValueError:
        scheme = ""
    if scheme != "scrypt":
        # Same cost as a real check, so an unknown user cannot be told apart by timing.
        hashlib.scrypt(password.encode(), salt=b"0" * 16, n=N, r=R, p=P, dklen=32)
        return False
    found = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(found, base64.b64decode(digest))


def set_password(
    session: Session, *, username: str, password: str, by: Acting, now: dt.datetime
) -> User:
    """A new password ends the user's sessions and lifts a lockout; an admin's act."""
    require_role(by, Role.admin, doing="user password")
    user = session.scalars(select(User).where(col(User.username) == username)).first()
    if user is None:
        raise NotFound(f"unknown user {username!r}")
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    user.session_epoch += 1
    session.add(
        Event(kind="user.password_set", at=now, actor=actor_of(by), data={"user": username})
    )
    return user


def log_in(
    session: Session, *, username: str, password: str, now: dt.datetime
) -> User | LoginRefused:
    """The active user with this password, or the refusal: returned, not raised, so the caller's
    transaction commits the failure count and its audit event.

    Every answer costs one scrypt and a refusal says the same whether the user is unknown, the
    password wrong or the account locked, so neither timing nor wording tells which names exist.
    """
    user = session.scalars(
        select(User)
        .where(col(User.username) == username.strip().lower(), col(User.active))
        .with_for_update()
    ).first()
    right = verify_password(password, user.password_hash if user else None)
    if user is None:
        return LoginRefused("credentials")
    if user.locked_until is not None and user.locked_until > now:
        session.add(Event(kind="user.login_locked", at=now, actor=actor_name(user), data={}))
        return LoginRefused("credentials")
    if not right:
        # Counted in SQL (failed_logins + 1), so parallel guesses cannot share one count.
        session.execute(
            update(User)
            .where(col(User.id) == user.id)
            .values(failed_logins=col(User.failed_logins) + 1)
        )
        session.refresh(user)
        locked = user.failed_logins >= MAX_FAILURES
        if locked:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        session.add(
            Event(
                kind="user.locked" if locked else "user.login_failed",
                at=now,
                actor=actor_name(user),
                data={"user": user.username},
            )
        )
        return LoginRefused("credentials")
    user.failed_logins, user.locked_until = 0, None
    session.add(Event(kind="user.login", at=now, actor=actor_name(user), data={}))
    return user


def log_out(session: Session, *, user_id: int, now: dt.datetime) -> None:
    """Ends every session of the user (the cookie names an epoch that no longer matches)."""
    user = session.get(User, user_id)
    if user is not None:
        user.session_epoch += 1
        session.add(Event(kind="user.logout", at=now, actor=actor_name(user), data={}))


def add_user(
    session: Session, *, data: UserIn, password: str, by: Acting, now: dt.datetime
) -> User:
    """A staff account; an admin's act."""
    require_role(by, Role.admin, doing="user add")
    if session.scalars(select(col(User.id)).where(col(User.username) == data.username)).first():
        raise DomainError(f"user {data.username!r} exists", key="user_exists", user=data.username)
    if data.district is not None:
        require_area(session, data.district)
    user = User(
        username=data.username,
        full_name=data.full_name,
        role=data.role.value,
        area_key=data.district,
        email=data.email,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.add(Event(kind="user.added", at=now, actor=actor_of(by), data={"user": data.username}))
    session.flush()
    return user


def set_active(
    session: Session, *, username: str, active: bool, by: Acting, now: dt.datetime
) -> User:
    """Deactivating ends the user's sessions at once (and their API tokens stop working); an
    admin's act."""
    require_role(by, Role.admin, doing="user activation")
    user = session.scalars(select(User).where(col(User.username) == username)).first()
    if user is None:
        raise NotFound(f"unknown user {username!r}")
    user.active = active
    user.session_epoch += 1
    kind = "user.activated" if active else "user.deactivated"
    session.add(Event(kind=kind, at=now, actor=actor_of(by), data={"user": username}))
    return user
