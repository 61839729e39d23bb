"""the sweep reads the work waiting, not the history: the prescriptions whose checks have not
finished, oldest change first, and those awaiting a decision with the basis of their findings
(server.worker.sweep); each a partial index, so a million prescriptions dispensed long ago
cost it nothing

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

# as server.prescriptions.models writes them (the queries repeat them literally)
UNCHECKED = "state IN ('checking', 'received')"
REVIEWABLE = "state IN ('awaiting_review', 'clarification_requested', 'in_review')"


def upgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.create_index(
            "ix_prescriptions_unchecked",
            ["updated_at", "id"],
            postgresql_where=sa.text(UNCHECKED),
            sqlite_where=sa.text(UNCHECKED),
        )
        batch.create_index(
            "ix_prescriptions_reviewable",
            ["patient_id", "checked_basis"],
            postgresql_include=["id"],
            postgresql_where=sa.text(REVIEWABLE),
            sqlite_where=sa.text(REVIEWABLE),
        )


def downgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_index("ix_prescriptions_reviewable")
        batch.drop_index("ix_prescriptions_unchecked")
