"""test messages: a prescription row stored from a SCRIPT Header/TestMessage is marked as a test

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        # every row stored before is a live prescription
        batch.add_column(sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("prescriptions") as batch:
        batch.alter_column("test", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_column("test")
