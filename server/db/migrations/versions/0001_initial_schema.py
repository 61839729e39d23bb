"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the model's column types: a migration must not change when models do.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_table(
        "pharmacies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ncpdpid", sa.String(length=7), nullable=False),
        sa.Column("npi", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacies")),
        sa.UniqueConstraint("ncpdpid", name=op.f("uq_pharmacies_ncpdpid")),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_client_id", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=80), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("relates_to_message_id", sa.String(length=35), nullable=True),
        sa.Column("transaction", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=10), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_inbound_messages_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "sender_client_id",
            "sender",
            "message_id",
            name=op.f("uq_inbound_messages_sender_client_id_sender_message_id"),
        ),
    )
    op.create_table(
        "oauth_clients",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("grant_types", sa.Text(), nullable=False),
        sa.Column("token_endpoint_auth_methods", sa.Text(), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_oauth_clients_pharmacy_id_pharmacies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_clients_client_id")),
    )
    op.create_table(
        "prescriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("inbound_message_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("prescriber_order_number", sa.String(length=35), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("drug_description", sa.String(length=105), nullable=False),
        sa.Column("dea_schedule", sa.String(length=10), nullable=True),
        sa.Column("written_date", sa.Date(), nullable=False),
        sa.Column("patient", JSON_DOC, nullable=False),
        sa.Column("prescriber", JSON_DOC, nullable=False),
        sa.Column("medication", JSON_DOC, nullable=False),
        sa.Column("details", JSON_DOC, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_prescriptions_inbound_message_id_inbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_prescriptions_pharmacy_id_pharmacies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescriptions")),
        sa.UniqueConstraint("inbound_message_id", name=op.f("uq_prescriptions_inbound_message_id")),
    )
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prescriptions_pharmacy_message", ["pharmacy_id", "message_id"], unique=False
        )
        batch_op.create_index(
            "ix_prescriptions_pharmacy_state", ["pharmacy_id", "state", "received_at"], unique=False
        )

    op.create_table(
        "prescription_transitions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_prescription_transitions_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription_transitions")),
    )
    with op.batch_alter_table("prescription_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prescription_transitions_prescription_id"),
            ["prescription_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("prescription_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prescription_transitions_prescription_id"))

    op.drop_table("prescription_transitions")
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_prescriptions_pharmacy_state")
        batch_op.drop_index("ix_prescriptions_pharmacy_message")

    op.drop_table("prescriptions")
    op.drop_table("oauth_clients")
    op.drop_table("inbound_messages")
    op.drop_table("pharmacies")
    op.drop_table("audit_events")
