"""notification triggers: what a notification is about, and the contact point it went to

``subject_id``: the prescription (or fill, or consult) a notification is about, so the change
that makes a pending one moot cancels it (a prescriber who answers before "needs the
prescriber" goes). ``contact_id``: the contact point chosen (an email's one-click unsubscribe
link names it). Neither is a foreign key: a notification outlives what it was about.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("subject_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("contact_id", sa.Uuid(), nullable=True))
    op.create_index("ix_notifications_subject", "notifications", ["subject_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_notifications_subject", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("contact_id")
        batch.drop_column("subject_id")
