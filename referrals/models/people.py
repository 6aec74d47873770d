"""Users of the engine, clients (pseudonymous, PII encrypted) and their consents."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from referrals.models.consents import ConsentMethod
from referrals.models.roles import Role
from referrals.models.types import UTCDateTime, utcnow

__all__ = ["Client", "ClientKey", "Consent", "ConsentMethod", "Role", "User", "actor_name"]


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=60)
    full_name: str
    role: str = Field(max_length=20)
    area_key: str | None = Field(default=None, foreign_key="area.key")
    email: str | None = None
    active: bool = True
    # Web login (usecases/staff/accounts.py): a scrypt hash, the lockout counter, and an epoch that ends
    # every session of the user when it changes (logout, new password, deactivation).
    password_hash: str | None = Field(default=None, max_length=200)
    failed_logins: int = 0
    locked_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_epoch: int = 0
    language: str = Field(default="vi", max_length=5)


class Client(SQLModel, table=True):
    """Known by `code` everywhere; name, phone and ID number only as ciphertext (models.crypto)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=20)
    area_key: str = Field(foreign_key="area.key", index=True)
    # None once erased (usecases/clients/subject.py); the code and history remain
    name_enc: str | None
    phone_enc: str | None = None
    id_number_enc: str | None = None
    phone_lookup: str | None = Field(default=None, index=True, max_length=64)
    id_number_lookup: str | None = Field(default=None, index=True, max_length=64)
    # The whole name's words, folded and sorted, as one keyed hash: two records of one name in a
    # district are found with one indexed lookup (usecases/clients/finding.py `name_key`).
    name_lookup: str | None = Field(default=None, index=True, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    erased_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A tombstone once merged into another client (usecases/clients/merging.py): it points at the
    # client kept, always one hop (a later merge of that client re-points it). Its referrals and
    # consents moved there; its events and its data key stay with it, read through this link.
    merged_into_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    merged_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class ClientKey(SQLModel, table=True):
    """A client's data key, wrapped under the secret (infra/crypto.py). Deleting the row is the
    erasure: it is kept apart from the data so backups can keep it apart too (a shorter life)."""

    __tablename__ = "client_key"

    client_id: int = Field(foreign_key="client.id", primary_key=True)
    wrapped: str = Field(max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    """The client agrees that `organization` may be asked for `purpose` (a pathway key)."""

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    organization_id: int = Field(foreign_key="organization.id")
    purpose: str = Field(max_length=60)
    method: str = Field(max_length=10)
    granted_at: dt.datetime = Field(sa_type=UTCDateTime)
    granted_by: int | None = Field(default=None, foreign_key="user.id")
    withdrawn_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_by: int | None = Field(default=None, foreign_key="user.id")


def actor_name(user: User | None) -> str:
    """How a person appears in the timeline: a username, never a client's identity."""
    return f"user:{user.username}" if user else "system"
