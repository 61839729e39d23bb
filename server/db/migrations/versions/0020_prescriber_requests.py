"""Requests to the prescriber: every kind of change request and renewal requests, with the
MessageID an answer relates to

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("clarification_requests") as batch:
        batch.add_column(
            sa.Column(
                "message_type",
                sa.String(length=40),
                server_default="RxChangeRequest",
                nullable=False,
            )
        )
        batch.add_column(sa.Column("message_id", sa.String(length=35), nullable=True))
        batch.add_column(sa.Column("request_code", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("detail", _JSON, nullable=True))
        batch.create_index(batch.f("ix_clarification_requests_message_id"), ["message_id"])
    # the questions asked so far were all script clarifications; their MessageIDs are their
    # outbound messages'
    op.execute("UPDATE clarification_requests SET request_code = 'S'")
    op.execute(
        "UPDATE clarification_requests SET message_id = (SELECT outbound_messages.message_id "
        "FROM outbound_messages WHERE outbound_messages.id = "
        "clarification_requests.outbound_message_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("clarification_requests") as batch:
        batch.drop_index(batch.f("ix_clarification_requests_message_id"))
        batch.drop_column("detail")
        batch.drop_column("request_code")
        batch.drop_column("message_id")
        batch.drop_column("message_type")
