"""client search: keyed hashes of the words of each client's name, and of the whole name

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 01:00:00

The hashes need the office's secret, which a migration does not hold: `referrals init` (and
`referrals keys rotate`) index every client not yet indexed (usecases/clients/finding.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_term",
        sa.Column("term", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.PrimaryKeyConstraint("term", "client_id"),
    )
    op.create_index("ix_client_term_client_id", "client_term", ["client_id"])
    op.add_column("client", sa.Column("name_lookup", sa.String(length=64), nullable=True))
    op.create_index("ix_client_name_lookup", "client", ["name_lookup"])


def downgrade() -> None:
    op.drop_index("ix_client_name_lookup", table_name="client")
    with op.batch_alter_table("client") as batch:
        batch.drop_column("name_lookup")
    op.drop_index("ix_client_term_client_id", table_name="client_term")
    op.drop_table("client_term")
