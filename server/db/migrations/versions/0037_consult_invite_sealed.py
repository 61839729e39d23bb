"""consults: the invite token sealed (AES-GCM under the data dir's key), so the patient's own
page can give the link again

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(sa.Column("invite_sealed", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("invite_sealed")
