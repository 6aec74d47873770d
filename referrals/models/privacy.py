"""The data-protection work the engine tracks (Law 91/2025/QH15, Decree 356/2025/ND-CP):
data subjects' requests, personal-data breaches and who was told of them.

Free text is personal data: a request's words, its outcome note and its extension reason are
sealed under the client's key (shredded with it); a breach's description under the office's key
(a breach spans clients). Codes, kinds, instants and counts are in clear.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from referrals.config.privacy import RequestKind
from referrals.models.types import UTCDateTime

__all__ = [
    "Breach",
    "BreachNotice",
    "Channel",
    "Outcome",
    "PrivacyRequest",
    "RequestKind",
    "Told",
]


class Channel(StrEnum):
    """How a request reached the office."""

    in_person = "in_person"
    phone = "phone"
    letter = "letter"
    email = "email"
    web = "web"
    partner = "partner"  # brought by a partner organisation or a peer group
    representative = "representative"  # a legal representative (Law Art. 24)


class Outcome(StrEnum):
    """How a request was closed."""

    done = "done"  # carried out
    partly = "partly"  # partly carried out (e.g. a third person's details withheld, Art. 15 k2 a)
    refused = "refused"  # refused, with the reason told to the subject (Art. 13 k3, Art. 14 k5)
    withdrawn = "withdrawn"  # the subject withdrew the request


class Told(StrEnum):
    """Who was told of a breach."""

    authority = "authority"  # the specialised agency (Law Art. 23 k1), or through its portal
    subjects = "subjects"  # the affected people (Decree 356 Art. 29)
    controller = "controller"  # a processor telling the controller (Art. 23 k1, 2nd sentence)
    partner = "partner"
    other = "other"


class PrivacyRequest(SQLModel, table=True):
    """A data subject's request, with its two deadlines: the acknowledgement (working days) and
    the completion (calendar days, once extendable). The sweep escalates each once when late."""

    __tablename__ = "privacy_request"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=20)
    client_id: int = Field(foreign_key="client.id", index=True)
    kind: str = Field(max_length=30)
    channel: str = Field(max_length=20)
    third_party: bool = False  # a partner must act: the longer limit
    text_enc: str | None = None  # the requester's words, sealed under the client's key
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    ack_due_at: dt.datetime = Field(sa_type=UTCDateTime)
    due_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)
    acknowledged_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=80)
    extended_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    extended_by: str | None = Field(default=None, max_length=80)
    extension_days: int | None = None
    was_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    extension_reason_enc: str | None = None
    closed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    closed_by: str | None = Field(default=None, max_length=80)
    outcome: str | None = Field(default=None, max_length=20)
    outcome_note_enc: str | None = None
    event_id: int | None = Field(default=None, foreign_key="event.id")  # the export or erasure
    # The sweep's marks: each lateness is escalated once (a conditional UPDATE sets them).
    ack_alerted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_alerted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=80)


class Breach(SQLModel, table=True):
    """A personal-data breach and its clock: the specialised agency is told within
    `breach_notify_hours` (72) of discovery (Law Art. 23 k1)."""

    __tablename__ = "privacy_breach"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=20)
    discovered_at: dt.datetime = Field(sa_type=UTCDateTime)
    occurred_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    notify_due_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)
    # What the notice says (Decree 356 Art. 28 k1 a, c, d), sealed under the office's key.
    place_enc: str | None = None
    nature_enc: str | None = None
    involved_enc: str | None = None  # organisations and people involved (never a client)
    consequences_enc: str | None = None
    measures_enc: str | None = None
    # The data affected: categories (client fields, referrals, notes) and the scope counted.
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    areas: list[str] = Field(default_factory=list, sa_type=JSON)  # empty: every area
    pathways: list[str] = Field(default_factory=list, sa_type=JSON)  # empty: every service
    notified_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # the agency
    warned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    overdue_alerted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=80)


class BreachNotice(SQLModel, table=True):
    """Who was told of a breach, when, how, and under which reference (never a person's name:
    an organisation, or "the affected clients")."""

    __tablename__ = "privacy_breach_notice"

    id: int | None = Field(default=None, primary_key=True)
    breach_id: int = Field(foreign_key="privacy_breach.id", index=True)
    told: str = Field(max_length=20)
    recipient: str = Field(max_length=200)
    channel: str = Field(max_length=40)
    reference: str | None = Field(default=None, max_length=100)
    at: dt.datetime = Field(sa_type=UTCDateTime)
    by: str = Field(max_length=80)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
