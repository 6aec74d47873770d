"""event kind index: events of a kind on a referral

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 05:20:29

The period report counts arrivals and no-shows by event kind, and the sweep asks whether a
referral's slip was printed and its client arrived since a step began: without this index each
read the whole timeline table. A plain CREATE INDEX (no batch mode): the event table's
append-only triggers must stay as they are.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_event_kind_referral", "event", ["kind", "referral_id"])


def downgrade() -> None:
    op.drop_index("ix_event_kind_referral", table_name="event")
