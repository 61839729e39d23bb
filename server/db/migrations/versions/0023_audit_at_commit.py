"""audit entries chained at commit: the pending table, and on PostgreSQL the deferred
trigger that chains them

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# frozen copies of the model's column types: a migration must not change when models do
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")

#: at commit, for the first pending row of each append: lock the chain's head (``h``), take
#: this transaction's pending entries (``p``: others' are invisible until they commit, and
#: they empty theirs at their own commit), chain them in the order written (``c``: the hash
#: of server.audit.entry_hash, SHA-256 over the previous hash, ``[<seq>,`` and the entry's
#: canonical tail), insert them, and move the head. Later firings of the same commit find
#: nothing left.
FLUSH = """
CREATE FUNCTION audit_flush() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH RECURSIVE
  h AS (SELECT seq, hash FROM audit_chain WHERE id = 1 FOR UPDATE),
  p AS (DELETE FROM audit_pending RETURNING *),
  e AS (SELECT p.*, row_number() OVER (ORDER BY p.id) AS n FROM p),
  c(n, seq, prev_hash, hash) AS (
    SELECT 0::bigint, seq, NULL::text, hash::text FROM h
    UNION ALL
    SELECT e.n, c.seq + 1, c.hash,
           encode(sha256(convert_to(c.hash || '[' || (c.seq + 1) || ',', 'UTF8') || e.tail),
                  'hex')
    FROM c JOIN e ON e.n = c.n + 1
  ),
  a AS (
    INSERT INTO audit_events (
      at, actor, pharmacy_id, action, resource_type, resource_id, outcome, ip, detail,
      seq, prev_hash, hash
    )
    SELECT e.at, e.actor, e.pharmacy_id, e.action, e.resource_type, e.resource_id,
           e.outcome, e.ip, e.detail, c.seq, c.prev_hash, c.hash
    FROM e JOIN c ON c.n = e.n
  )
  UPDATE audit_chain SET seq = c.seq, hash = c.hash
  FROM c WHERE audit_chain.id = 1 AND c.n = (SELECT max(n) FROM e);
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tail", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.Column("flush", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_pending")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # rows live for one transaction: vacuum often, or every flush scans the dead ones
        op.execute(
            "ALTER TABLE audit_pending SET (autovacuum_vacuum_scale_factor = 0,"
            " autovacuum_vacuum_threshold = 1000)"
        )
        op.execute(FLUSH)
        op.execute(
            "CREATE CONSTRAINT TRIGGER audit_pending_flush AFTER INSERT ON audit_pending"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.flush)"
            " EXECUTE FUNCTION audit_flush()"
        )
        # also in a session replicating (session_replication_role = replica): entries written
        # there are chained like any others ("audit verify" reports any left unchained)
        op.execute("ALTER TABLE audit_pending ENABLE ALWAYS TRIGGER audit_pending_flush")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_pending_flush ON audit_pending")
        op.execute("DROP FUNCTION audit_flush()")
    op.drop_table("audit_pending")
