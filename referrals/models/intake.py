"""Peer educators bring people in: a standing link per peer-group contact, and what it sends.

A peer educator (nhóm đồng đẳng, e.g. Sao Biển) meets someone who needs help and, with their
agreement, tells the office through a short form behind a standing link. The link is a row of
its own (not an outbox message like a partner's action link) because it is handed over once and
kept, serving many intakes until an admin revokes it. What the form sends waits in the area's
coordinators' queue as an `Intake`, its name and phone sealed by the office's vault (there is no
client yet, so no client key); once a coordinator registers or finds the client, the intake
points at that client and its sealed copy is wiped.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from referrals.models.types import UTCDateTime, utcnow


class PeerLink(SQLModel, table=True):
    """A peer-group contact's standing link to the intake form; revocable like the others."""

    __tablename__ = "peer_link"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=80)  # the admin's actor string
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class IntakeStatus(StrEnum):
    waiting = "waiting"  # in the area's coordinators' queue
    taken = "taken"  # a coordinator registered or found the client
    dismissed = "dismissed"  # not a case for the office (a coordinator's choice, with a reason)


class Intake(SQLModel, table=True):
    """One person a peer educator brought in, waiting for a coordinator (codes and keys in the
    clear; the nickname and phone sealed by the vault, wiped once the client holds them)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=20)  # what the peer educator gets back
    peer_link_id: int = Field(foreign_key="peer_link.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)  # the peer group
    contact_id: int = Field(foreign_key="contact.id")
    area_key: str = Field(foreign_key="area.key", index=True)
    services: list[str] = Field(default_factory=list, sa_type=JSON)  # pathway keys
    nickname_enc: str | None = None
    phone_enc: str | None = None
    agreed_to_contact: bool = False
    status: str = Field(default=IntakeStatus.waiting.value, max_length=20, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    taken_by: int | None = Field(default=None, foreign_key="user.id")
    taken_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
