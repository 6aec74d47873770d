"""service capacity: what a partner last said of a service from its link

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("capacity", sa.String(length=10), nullable=False, server_default="open")
        )
        batch_op.add_column(sa.Column("capacity_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_column("capacity_at")
        batch_op.drop_column("capacity")
