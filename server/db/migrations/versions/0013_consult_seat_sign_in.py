"""consult seats remember the pharmacist's sign-in (token family) their authority rests on

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consult_seats") as batch:
        batch.add_column(sa.Column("sign_in", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consult_seats") as batch:
        batch.drop_column("sign_in")
