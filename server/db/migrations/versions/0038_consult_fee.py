"""payments: a pharmacy's consult-fee policy (billed after, paid in the waiting room, paid
before admission) and the consult a payment pays the fee of

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_settings",
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("consult_fee", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pharmacy_id"], ["pharmacies.id"]),
        sa.PrimaryKeyConstraint("pharmacy_id"),
    )
    with op.batch_alter_table("payment_intents") as batch:
        batch.add_column(sa.Column("consult_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_payment_intents_consult_id", ["consult_id"])


def downgrade() -> None:
    with op.batch_alter_table("payment_intents") as batch:
        batch.drop_index("ix_payment_intents_consult_id")
        batch.drop_column("consult_id")
    op.drop_table("payment_settings")
