"""areas with time: an area's validity and its successors

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 11:45:00

The 2025 reform ended the districts and merged communes and wards (issue 23): an area is now in
force for a span of days, and an ended area names the areas that took over its territory, as
province.yaml says (referrals/config/areas.py). Plain ADD COLUMN (nullable: every existing area
stays in force, as before) and a new table: no batch copy of `area`, which clients, users and
referrals point at.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("area", sa.Column("valid_from", sa.Date(), nullable=True))
    op.add_column("area", sa.Column("valid_to", sa.Date(), nullable=True))
    op.create_table(
        "area_successor",
        sa.Column("area_key", sa.String(length=60), nullable=False),
        sa.Column("successor_key", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(["area_key"], ["area.key"]),
        sa.ForeignKeyConstraint(["successor_key"], ["area.key"]),
        sa.PrimaryKeyConstraint("area_key", "successor_key"),
    )


def downgrade() -> None:
    op.drop_table("area_successor")
    with op.batch_alter_table("area") as batch:
        batch.drop_column("valid_to")
        batch.drop_column("valid_from")
