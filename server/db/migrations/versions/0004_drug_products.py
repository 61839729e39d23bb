"""drug products

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "drug_products",
        sa.Column("product_id", sa.String(length=80), nullable=False),
        sa.Column("product_ndc", sa.String(length=12), nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_drug_products")),
    )
    with op.batch_alter_table("drug_products", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_drug_products_product_ndc"), ["product_ndc"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("drug_products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drug_products_product_ndc"))

    op.drop_table("drug_products")
