"""Pathway versions, referrals, their steps, the append-only event timeline and the outbox."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Update, text, update
from sqlmodel import Field, SQLModel, col

from referrals.models.lifecycle import DUE, OPEN, MessageStatus
from referrals.models.types import UTCDateTime, utcnow


class PathwayVersion(SQLModel, table=True):
    """One version of a pathway template; a changed YAML template adds a row, never edits one."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=60)
    version: int
    digest: str = Field(max_length=16)
    name: str
    name_en: str
    definition: dict[str, Any] = Field(sa_type=JSON)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (Index("ux_pathway_key_version", "key", "version", unique=True),)


_version = Column("version", Integer, nullable=False, default=1)
_due_statuses = ", ".join(f"'{s}'" for s in sorted(DUE))
_open_statuses = ", ".join(f"'{s}'" for s in sorted(OPEN))


class Referral(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=20)
    client_id: int = Field(foreign_key="client.id", index=True)
    pathway_key: str = Field(max_length=60)
    pathway_version: int
    organization_id: int = Field(foreign_key="organization.id", index=True)
    service_id: int = Field(foreign_key="service.id")
    area_key: str = Field(foreign_key="area.key", index=True)  # the client's area at launch
    coordinator_id: int = Field(foreign_key="user.id", index=True)
    status: str = Field(max_length=20, index=True)
    held_from: str | None = Field(default=None, max_length=20)
    priority: str = Field(default="routine", max_length=10)
    outcome: str | None = Field(default=None, max_length=20)
    outcome_reason: str | None = Field(default=None, max_length=40)
    launched_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)
    closed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(default=1, sa_column=_version)

    __mapper_args__ = {"version_id_col": _version}
    __table_args__ = (
        # One open referral per client and pathway, enforced by the database under concurrency.
        Index(
            "ux_referral_open_per_client_pathway",
            "client_id",
            "pathway_key",
            unique=True,
            sqlite_where=text(f"status IN ({_open_statuses})"),
            postgresql_where=text(f"status IN ({_open_statuses})"),
        ),
    )


class Step(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    seq: int
    key: str = Field(max_length=60)
    actor: str = Field(max_length=20)
    status: str = Field(max_length=20)
    due_rule: dict[str, Any] = Field(sa_type=JSON)
    activated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    completed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_by: str | None = Field(default=None, max_length=80)
    reminders_sent: int = 0
    escalation_level: int = 0
    # The deadline ladder's cursor: the next alert to fire (index into the step's alerts, see
    # models/deadlines.py) and when. Activation sets it to "now" so the next sweep schedules it.
    alert_seq: int = 0
    next_alert_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        Index("ux_step_referral_seq", "referral_id", "seq", unique=True),
        # What a sweep reads: active steps whose next alert is due, in time order.
        Index(
            "ix_step_next_alert",
            "next_alert_at",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        # At most one active step per referral, and the index that finds it (`list`, `show`).
        Index(
            "ux_step_active_per_referral",
            "referral_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class Event(SQLModel, table=True):
    """Append-only timeline and audit trail. Carries codes and keys, never PII."""

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int | None = Field(default=None, foreign_key="referral.id", index=True)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    step_id: int | None = Field(default=None, foreign_key="step.id")
    kind: str = Field(max_length=40)
    at: dt.datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=80)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # The audit chain (usecases/audit.py): the event's place in sealing order and the HMAC of the
    # previous link and this event, set once by the sealer. Database triggers refuse any other
    # change, and any delete.
    chain_seq: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    chain_hash: str | None = Field(default=None, max_length=64)

    # Events of a kind on a referral: the report's arrivals and no-shows, the sweep's "arrived
    # since the step began" and "slip printed", without reading the whole timeline table.
    __table_args__ = (Index("ix_event_kind_referral", "kind", "referral_id"),)


class Notification(SQLModel, table=True):
    """The outbox: written with the state change that causes it, delivered after commit."""

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int | None = Field(default=None, foreign_key="referral.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    user_id: int | None = Field(default=None, foreign_key="user.id")
    channel: str = Field(max_length=10)
    template: str = Field(max_length=60)
    language: str = Field(default="vi", max_length=5)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    subject: str | None = None
    body: str | None = None
    idempotency_key: str = Field(unique=True, max_length=200)
    status: str = Field(default="queued", max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_token: str | None = Field(default=None, max_length=32)
    # The partner's link in this message: when an answer came through it, when it was withdrawn.
    link_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    link_revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Issue 24. The gateway's id for the message, which its delivery receipt names; when the
    # receipt said delivered or not (and the carrier's reason in `last_error`).
    provider_id: str | None = Field(default=None, max_length=100)
    receipt_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A sent message on a channel that reports delivery and has no receipt by then counts as
    # unconfirmed, and the prompt moves on to the next channel.
    confirm_by: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The contact's channels still to try for this prompt, in order, and when the next one was
    # queued (once: the guard of a conditional UPDATE).
    fallback: list[str] = Field(default_factory=list, sa_type=JSON)
    fell_back_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What the gateway bills: SMS segments, one Zalo message; none for e-mail (reports' costs).
    units: int | None = None

    __table_args__ = (
        # What a delivery pass claims: due messages, oldest first.
        Index(
            "ix_notification_due",
            "next_attempt_at",
            sqlite_where=text(f"status IN ({_due_statuses})"),
            postgresql_where=text(f"status IN ({_due_statuses})"),
        ),
        # Receipts find their message by the gateway's id.
        Index(
            "ix_notification_provider",
            "channel",
            "provider_id",
            sqlite_where=text("provider_id IS NOT NULL"),
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
        # Sent and not yet confirmed: what the delivery pass moves on when time is up.
        Index(
            "ix_notification_confirm",
            "confirm_by",
            sqlite_where=text("status = 'sent' AND confirm_by IS NOT NULL"),
            postgresql_where=text("status = 'sent' AND confirm_by IS NOT NULL"),
        ),
    )

    @classmethod
    def cancelling(cls, *where: Any, reason: str) -> Update:
        """The one way unsent messages are cancelled (a closed referral, an answered step).

        The status is checked again as the row is written, so a pass that records a message as
        sent first wins and it stays sent (a read-then-write left one both sent and cancelled);
        the lease goes with the status, so a pass holding the message records nothing over
        the cancellation (one had turned it back into sent, or into failed and retried)."""
        due = col(cls.status).in_([s.value for s in DUE])
        return (
            update(cls)
            .where(due, *where)
            .values(
                status=MessageStatus.cancelled.value,
                last_error=reason,
                lease_until=None,
                lease_token=None,
            )
        )


class ExtensionStatus(StrEnum):
    requested = "requested"  # beyond the step's limit: waits for the coordinator
    granted = "granted"
    refused = "refused"


class Extension(SQLModel, table=True):
    """A partner's request for more time on a step (gia hạn), and what became of it.

    Within the step's limit (`extend_limit` in pathways.yaml) it is granted as it is asked;
    beyond it, it waits for the coordinator. At most one waits per step (the partial index), so
    a double tap or two contacts at once cannot leave two requests to decide. The reason is free
    text and may name the client: sealed under the client's key, shredded with it."""

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    asked_at: dt.datetime = Field(sa_type=UTCDateTime)
    was_due_at: dt.datetime = Field(sa_type=UTCDateTime)  # the deadline when it was asked
    new_due_at: dt.datetime = Field(sa_type=UTCDateTime)
    reason_enc: str | None = None
    status: str = Field(default=ExtensionStatus.requested.value, max_length=20)
    decided_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=80)

    __table_args__ = (
        Index(
            "ux_extension_waiting_per_step",
            "step_id",
            unique=True,
            sqlite_where=text("status = 'requested'"),
            postgresql_where=text("status = 'requested'"),
        ),
    )


class SweepRun(SQLModel, table=True):
    """One pass of the deadline sweep: when, for which instant, and what it fired."""

    id: int | None = Field(default=None, primary_key=True)
    now: dt.datetime = Field(sa_type=UTCDateTime, index=True)  # the instant swept up to
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    counts: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
