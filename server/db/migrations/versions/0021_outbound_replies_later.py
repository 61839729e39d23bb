"""outbound messages: a reply that came later, posted to the intake, names the message as
received

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("reply_inbound_message_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_outbound_messages_reply_inbound_message_id_inbound_messages"),
            "inbound_messages",
            ["reply_inbound_message_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_constraint(
            op.f("fk_outbound_messages_reply_inbound_message_id_inbound_messages"),
            type_="foreignkey",
        )
        batch.drop_column("reply_inbound_message_id")
