"""EPCS archive: controlled-substance records as the hub signed them on receipt, with what
came of the practitioner's signature ("verified on receipt")

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "epcs_archives",
        sa.Column(
            "id", sa.BigInteger().with_variant(sqlite.INTEGER(), "sqlite"), autoincrement=True
        ),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("inbound_message_id", sa.Uuid(), nullable=False),
        sa.Column("record", _JSON, nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("verified_on_receipt", sa.Boolean(), nullable=False),
        sa.Column("verification", _JSON, nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_epcs_archives_prescription_id_prescriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_epcs_archives_inbound_message_id_inbound_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcs_archives")),
        sa.UniqueConstraint("prescription_id", name=op.f("uq_epcs_archives_prescription_id")),
    )


def downgrade() -> None:
    op.drop_table("epcs_archives")
