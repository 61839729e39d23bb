"""findings record the version of the patient's picture they were computed on

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_pictures",
        sa.Column("patient_id", sa.Uuid(), sa.ForeignKey("patients.id"), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("prescriptions") as batch:
        batch.add_column(sa.Column("checked_basis", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_column("checked_basis")
    op.drop_table("patient_pictures")
