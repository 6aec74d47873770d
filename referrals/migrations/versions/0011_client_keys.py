"""client keys: each client's data key, wrapped under the secret (crypto-shredding on erasure)

Clients from before keep their details sealed under the secret itself until `referrals keys
rotate` gives them a key of their own (no secret is needed here).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_key",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.PrimaryKeyConstraint("client_id"),
    )


def downgrade() -> None:
    op.drop_table("client_key")
