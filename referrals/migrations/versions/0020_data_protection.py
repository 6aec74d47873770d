"""data protection: data subjects' requests, breaches and who was told of them

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 12:50:00

Issue 23 item 4, the 2026 data-protection law as work the engine tracks (Law 91/2025/QH15,
Decree 356/2025/ND-CP; models/privacy.py). New tables only: nothing existing changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "privacy_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _text(length=20), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", _text(length=30), nullable=False),
        sa.Column("channel", _text(length=20), nullable=False),
        sa.Column("third_party", sa.Boolean(), nullable=False),
        sa.Column("text_enc", _text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", _text(length=80), nullable=True),
        sa.Column("extended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extended_by", _text(length=80), nullable=True),
        sa.Column("extension_days", sa.Integer(), nullable=True),
        sa.Column("was_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extension_reason_enc", _text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", _text(length=80), nullable=True),
        sa.Column("outcome", _text(length=20), nullable=True),
        sa.Column("outcome_note_enc", _text(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("ack_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", _text(length=80), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("privacy_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_request_code"), ["code"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_privacy_request_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_privacy_request_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_privacy_request_closed_at"), ["closed_at"], unique=False
        )

    op.create_table(
        "privacy_breach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _text(length=20), nullable=False),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place_enc", _text(), nullable=True),
        sa.Column("nature_enc", _text(), nullable=True),
        sa.Column("involved_enc", _text(), nullable=True),
        sa.Column("consequences_enc", _text(), nullable=True),
        sa.Column("measures_enc", _text(), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("pathways", sa.JSON(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", _text(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("privacy_breach", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_breach_code"), ["code"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_privacy_breach_notify_due_at"), ["notify_due_at"], unique=False
        )

    op.create_table(
        "privacy_breach_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("breach_id", sa.Integer(), nullable=False),
        sa.Column("told", _text(length=20), nullable=False),
        sa.Column("recipient", _text(length=200), nullable=False),
        sa.Column("channel", _text(length=40), nullable=False),
        sa.Column("reference", _text(length=100), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", _text(length=80), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["breach_id"], ["privacy_breach.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("privacy_breach_notice", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privacy_breach_notice_breach_id"), ["breach_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("privacy_breach_notice")
    op.drop_table("privacy_breach")
    op.drop_table("privacy_request")
