"""partner loop: extensions, peer links and intakes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 03:30:24

Issue 20: a partner's request for more time on a step (`extension`), a peer-group contact's
standing link (`peer_link`) and the people it brings in (`intake`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "peer_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("peer_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_peer_link_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_peer_link_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "intake",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("peer_link_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("area_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("nickname_enc", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("phone_enc", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("agreed_to_contact", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("taken_by", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["area_key"],
            ["area.key"],
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.ForeignKeyConstraint(
            ["peer_link_id"],
            ["peer_link.id"],
        ),
        sa.ForeignKeyConstraint(
            ["taken_by"],
            ["user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("intake", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intake_area_key"), ["area_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_intake_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_intake_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_intake_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_intake_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_intake_peer_link_id"), ["peer_link_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_intake_status"), ["status"], unique=False)

    op.create_table(
        "extension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("was_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("new_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason_enc", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["step.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_extension_referral_id"), ["referral_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_extension_step_id"), ["step_id"], unique=False)
        batch_op.create_index(
            "ux_extension_waiting_per_step",
            ["step_id"],
            unique=True,
            sqlite_where=sa.text("status = 'requested'"),
            postgresql_where=sa.text("status = 'requested'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_extension_waiting_per_step",
            sqlite_where=sa.text("status = 'requested'"),
            postgresql_where=sa.text("status = 'requested'"),
        )
        batch_op.drop_index(batch_op.f("ix_extension_step_id"))
        batch_op.drop_index(batch_op.f("ix_extension_referral_id"))

    op.drop_table("extension")
    with op.batch_alter_table("intake", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_status"))
        batch_op.drop_index(batch_op.f("ix_intake_peer_link_id"))
        batch_op.drop_index(batch_op.f("ix_intake_organization_id"))
        batch_op.drop_index(batch_op.f("ix_intake_created_at"))
        batch_op.drop_index(batch_op.f("ix_intake_code"))
        batch_op.drop_index(batch_op.f("ix_intake_client_id"))
        batch_op.drop_index(batch_op.f("ix_intake_area_key"))

    op.drop_table("intake")
    with op.batch_alter_table("peer_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peer_link_organization_id"))
        batch_op.drop_index(batch_op.f("ix_peer_link_contact_id"))

    op.drop_table("peer_link")
