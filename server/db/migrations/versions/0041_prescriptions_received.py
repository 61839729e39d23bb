"""the schedule's "received" job reads an index range: the prescriptions of every pharmacy
received within its window, in the order it takes them (``received_at``, then ``id``), so a run
reads the last days' rows, not the whole history (server.schedule.jobs.received)

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.create_index("ix_prescriptions_received", ["received_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_index("ix_prescriptions_received")
