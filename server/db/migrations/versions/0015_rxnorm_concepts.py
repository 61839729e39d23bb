"""rxnorm concepts: the operator's RxNorm import

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rxnorm_concepts",
        sa.Column("rxcui", sa.String(length=16), nullable=False),
        sa.Column("tty", sa.String(length=8), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rxcui", name=op.f("pk_rxnorm_concepts")),
    )


def downgrade() -> None:
    op.drop_table("rxnorm_concepts")
