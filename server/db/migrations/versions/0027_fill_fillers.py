"""fills: everyone who did a step of the filling, none of whom may check its product

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# frozen copy of the model's column type: a migration must not change when models do
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("fillers", JSON_DOC, nullable=True))
    # the fills before: none recorded (their starter, ``filled_by``, is still refused)
    op.execute("UPDATE fills SET fillers = '[]'")
    with op.batch_alter_table("fills") as batch:
        batch.alter_column("fillers", existing_type=JSON_DOC, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("fillers")
