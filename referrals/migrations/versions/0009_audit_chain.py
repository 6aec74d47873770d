"""append-only audit chain: events get a chain hash; triggers refuse updates and deletes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 04:45:00

The triggers allow exactly one change to an event: setting its chain position and hash, once,
with every other column as it was (the sealer in usecases/audit.py). Note for later migrations:
rebuilding the event table on SQLite (batch mode) drops these triggers; create them again. Anything else is refused by the database
itself, whoever asks. The SQL is written out here, not imported, so this migration stays what
it was when it ran.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("id", "referral_id", "client_id", "step_id", "kind", "at", "actor")

POSTGRESQL = [
    """
    CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL
         AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL
         AND (NEW.id, NEW.referral_id, NEW.client_id, NEW.step_id, NEW.kind, NEW.at, NEW.actor,
              NEW.data::text)
             IS NOT DISTINCT FROM
             (OLD.id, OLD.referral_id, OLD.client_id, OLD.step_id, OLD.kind, OLD.at, OLD.actor,
              OLD.data::text)
      THEN
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'P0001';
    END $$
    """,
    """
    CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON event
    FOR EACH ROW EXECUTE FUNCTION event_append_only()
    """,
    """
    CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event
    FOR EACH STATEMENT EXECUTE FUNCTION event_append_only()
    """,
]
_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in (*COLUMNS, "data"))
SQLITE = [
    """
    CREATE TRIGGER event_no_delete BEFORE DELETE ON event
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END
    """,
    f"""
    CREATE TRIGGER event_no_update BEFORE UPDATE ON event
    WHEN OLD.chain_hash IS NOT NULL OR NEW.chain_hash IS NULL
      OR OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL OR {_CHANGED}
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END
    """,
]


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_event_chain_seq", ["chain_seq"])
    statements = POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE
    for sql in statements:
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS event_no_truncate ON event")
        op.execute("DROP TRIGGER IF EXISTS event_append_only ON event")
        op.execute("DROP FUNCTION IF EXISTS event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS event_no_update")
        op.execute("DROP TRIGGER IF EXISTS event_no_delete")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_event_chain_seq", type_="unique")
        batch_op.drop_column("chain_hash")
        batch_op.drop_column("chain_seq")
