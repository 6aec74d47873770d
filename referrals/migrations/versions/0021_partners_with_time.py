"""partners with time: a partner's, service's and contact's validity, and a partner's successors

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 13:10:00

Issue 23 item 3: the district police ended on 1 March 2025 and the ward police took over their
ID work, so a partner is in force for a span of days and an ended one names the partners that
took over (partners.yaml). Plain nullable ADD COLUMN (every existing row stays in force, as
before) and a new table, as 0019 did for areas.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("organization", "service", "contact")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("valid_from", sa.Date(), nullable=True))
        op.add_column(table, sa.Column("valid_to", sa.Date(), nullable=True))
    op.create_table(
        "organization_successor",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("successor_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["successor_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("organization_id", "successor_id"),
    )


def downgrade() -> None:
    op.drop_table("organization_successor")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("valid_to")
            batch.drop_column("valid_from")
