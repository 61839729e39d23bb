"""outbox: outbound SCRIPT messages with their delivery; clients' endpoints; a clarification
names the message that asks it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: "DIRECT:" and 256 characters (eprescribe.ncpdp.types.PARTY_TEXT_MAX)
PARTY_TEXT_MAX = 263
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=PARTY_TEXT_MAX), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("relates_to_message_id", sa.String(length=35), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("dead_after", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reply_type", sa.String(length=16), nullable=True),
        sa.Column("reply_code", sa.String(length=8), nullable=True),
        sa.Column("reply_description_code", sa.String(length=8), nullable=True),
        sa.Column("reply_message_id", sa.String(length=35), nullable=True),
        sa.Column("reply", sa.LargeBinary(), nullable=True),
        sa.Column("replied_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_outbound_messages_pharmacy_id_pharmacies"),
        ),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_outbound_messages_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbound_messages_message_id")),
        sa.UniqueConstraint(
            "prescription_id",
            "position",
            name=op.f("uq_outbound_messages_prescription_id_position"),
        ),
    )
    op.create_index(
        "ix_outbound_messages_state_due", "outbound_messages", ["state", "next_attempt_at"]
    )
    op.create_index(op.f("ix_outbound_messages_pharmacy_id"), "outbound_messages", ["pharmacy_id"])
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(sa.Column("endpoint", sa.Text(), nullable=True))
        batch.add_column(sa.Column("endpoint_token", sa.Text(), nullable=True))
    with op.batch_alter_table("clarification_requests") as batch:
        # questions asked before were never sent: they name no message (and stay unsent)
        batch.add_column(sa.Column("outbound_message_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_clarification_requests_outbound_message_id_outbound_messages"),
            "outbound_messages",
            ["outbound_message_id"],
            ["id"],
        )
        batch.drop_column("sent_at")


def downgrade() -> None:
    with op.batch_alter_table("clarification_requests") as batch:
        batch.add_column(sa.Column("sent_at", UTCDateTime, nullable=True))
        batch.drop_constraint(
            op.f("fk_clarification_requests_outbound_message_id_outbound_messages"),
            type_="foreignkey",
        )
        batch.drop_column("outbound_message_id")
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("endpoint_token")
        batch.drop_column("endpoint")
    op.drop_index(op.f("ix_outbound_messages_pharmacy_id"), table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_state_due", table_name="outbound_messages")
    op.drop_table("outbound_messages")
