"""audit: entries at or below the retention checkpoint and past the legal minimum may be deleted

The checkpoint is the ``audit_chain`` row 2 (server.audit.CHECKPOINT_ID: the last pruned
entry's ``seq`` and hash, written by ``telepharm retention`` in the transaction that chains
the entry attesting it). An entry may be deleted only if it is at or below the checkpoint AND
older than the legal minimum, 731 days by its ``at`` (eprescribe.retention.TWO_YEARS, written
out here as a migration must not change with the code): the app's role can move the
checkpoint, but not make a young entry deletable with it. Every other entry stays
append-only: no UPDATE, no DELETE, no TRUNCATE.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT seq FROM audit_chain WHERE id = 2) "
            "AND OLD.at < now() - interval '731 days' THEN RETURN OLD; END IF; "
            "RAISE EXCEPTION 'audit_events is append-only'; END $$"
        )
        return
    op.execute("DROP TRIGGER audit_events_no_delete")
    op.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "WHEN OLD.seq > coalesce((SELECT seq FROM audit_chain WHERE id = 2), 0) "
        # SQLite stores the UTC time as text, "YYYY-MM-DD HH:MM:SS.ffffff": compared as text
        "OR OLD.at >= datetime('now', '-731 days') "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$"
        )
        return
    op.execute("DROP TRIGGER audit_events_no_delete")
    op.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )
