"""scale with the work, not the history: each pharmacy's queue revision (counted up by every
change to what its queues show, backfilled one a pharmacy), the queue's keyset indexes, the
running claims, a pharmacist's consults by state, and the patient search by name (the name
keys compared byte by byte on PostgreSQL, so a prefix reads an index range)

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None

NAME_KEY_MAX = 100


def upgrade() -> None:
    op.create_table(
        "queue_revisions",
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_queue_revisions_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("pharmacy_id", "shard", name=op.f("pk_queue_revisions")),
    )
    # a first share a pharmacy: the poll sums its shares, the writers count one up
    op.execute(
        "INSERT INTO queue_revisions (pharmacy_id, shard, revision) SELECT id, 0, 1 FROM pharmacies"
    )
    with op.batch_alter_table("prescriptions") as batch:
        batch.create_index(
            "ix_prescriptions_queue_state",
            ["pharmacy_id", "state", "test", "urgent", "received_at", "id"],
        )
        batch.create_index(
            "ix_prescriptions_queue", ["pharmacy_id", "test", "urgent", "received_at", "id"]
        )
        batch.create_index(
            "ix_prescriptions_claims",
            ["pharmacy_id", "claimed_until"],
            postgresql_where=sa.text("claimed_until IS NOT NULL"),
            sqlite_where=sa.text("claimed_until IS NOT NULL"),
        )
    with op.batch_alter_table("consults") as batch:
        batch.create_index(
            "ix_consults_pharmacist_state",
            ["pharmacy_id", "pharmacist_id", "state", "created_at", "id"],
        )
    if op.get_bind().dialect.name == "postgresql":
        # byte order: the planner reads LIKE 'x%' as an index range only under "C" (the keys
        # are the letters a to z, so no order changes)
        for column in ("last_name_key", "first_name_key"):
            op.alter_column(
                "patients",
                column,
                type_=sa.String(length=NAME_KEY_MAX, collation="C"),
                existing_type=sa.String(length=NAME_KEY_MAX),
                existing_nullable=False,
                postgresql_using=f'{column} COLLATE "C"',
            )
    with op.batch_alter_table("patients") as batch:
        batch.create_index(
            "ix_patients_search", ["pharmacy_id", "last_name_key", "first_name_key", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_index("ix_patients_search")
    if op.get_bind().dialect.name == "postgresql":
        for column in ("last_name_key", "first_name_key"):
            op.alter_column(
                "patients",
                column,
                type_=sa.String(length=NAME_KEY_MAX),
                existing_type=postgresql.VARCHAR(length=NAME_KEY_MAX, collation="C"),
                existing_nullable=False,
            )
    with op.batch_alter_table("consults") as batch:
        batch.drop_index("ix_consults_pharmacist_state")
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_index("ix_prescriptions_claims")
        batch.drop_index("ix_prescriptions_queue")
        batch.drop_index("ix_prescriptions_queue_state")
    op.drop_table("queue_revisions")
