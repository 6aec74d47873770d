"""client merge: a client may be a tombstone pointing at the client it was merged into, and when

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 00:30:00

Two nullable columns on `client` (usecases/clients/merging.py says what a merge does). On
SQLite the column and its foreign key are added with one plain `ALTER TABLE ... ADD COLUMN ...
REFERENCES`, which SQLite allows for a column whose default is NULL: batch mode would rebuild
the table, and dropping the old `client` table fails (or, with the foreign keys off, silently
orphans them) as soon as a referral, consent or event points at a client, that is, on every
office's database. Nothing else about the table changes, so the event triggers (0009) and the
rows stay as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_client_merged_into_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE client ADD COLUMN merged_into_id INTEGER REFERENCES client (id)")
    else:
        op.add_column("client", sa.Column("merged_into_id", sa.Integer(), nullable=True))
        op.create_foreign_key(FK, "client", "client", ["merged_into_id"], ["id"])
    op.add_column("client", sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_client_merged_into_id", "client", ["merged_into_id"])


def downgrade() -> None:
    op.drop_index("ix_client_merged_into_id", table_name="client")
    if op.get_bind().dialect.name == "sqlite":  # SQLite >= 3.35 drops a plain column in place
        op.execute("ALTER TABLE client DROP COLUMN merged_at")
        op.execute("ALTER TABLE client DROP COLUMN merged_into_id")
        return
    op.drop_constraint(FK, "client", type_="foreignkey")
    op.drop_column("client", "merged_at")
    op.drop_column("client", "merged_into_id")
