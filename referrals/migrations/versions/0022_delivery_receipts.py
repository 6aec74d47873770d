"""delivery receipts, a fallback per contact, billed units, and the gateways' rotating tokens

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 17:40:00

Issue 24: a message sent through Zalo or a brandname SMS gateway is delivered or undelivered
when the gateway's receipt comes; a prompt goes to a contact's channels one at a time, in the
contact's order (partners.yaml) or the province's; the period report counts what each channel
bills. Plain nullable ADD COLUMN (old rows: no receipt, no fallback, units unknown), partial
indexes for the receipt lookup and the confirmation deadline, and one new table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    sa.Column("provider_id", sa.String(length=100), nullable=True),
    sa.Column("receipt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("confirm_by", sa.DateTime(timezone=True), nullable=True),
    sa.Column("fallback", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("fell_back_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("units", sa.Integer(), nullable=True),
)


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("notification", column)
    op.create_index(
        "ix_notification_provider",
        "notification",
        ["channel", "provider_id"],
        sqlite_where=sa.text("provider_id IS NOT NULL"),
        postgresql_where=sa.text("provider_id IS NOT NULL"),
    )
    op.create_index(
        "ix_notification_confirm",
        "notification",
        ["confirm_by"],
        sqlite_where=sa.text("status = 'sent' AND confirm_by IS NOT NULL"),
        postgresql_where=sa.text("status = 'sent' AND confirm_by IS NOT NULL"),
    )
    op.add_column("contact", sa.Column("channels", sa.JSON(), nullable=True))
    op.create_table(
        "channel_secret",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value_enc", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("channel_secret")
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("channels")
    op.drop_index("ix_notification_confirm", table_name="notification")
    op.drop_index("ix_notification_provider", table_name="notification")
    with op.batch_alter_table("notification") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column.name)
