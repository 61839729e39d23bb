"""labels: the pharmacy's address and phone for its labels, and each fill's label as printed

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pharmacies") as batch:
        batch.add_column(sa.Column("address", sa.Text(), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("label_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("label_printed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("label_printed_at")
        batch.drop_column("label_text")
    with op.batch_alter_table("pharmacies") as batch:
        batch.drop_column("phone")
        batch.drop_column("address")
