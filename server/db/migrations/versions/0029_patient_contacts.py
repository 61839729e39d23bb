"""patients: contact points (verified, opted out per channel), preferences and consent

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
# frozen copies of the models' types: a migration must not change when models do
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ADDRESS_MAX = 320


def upgrade() -> None:
    op.create_table(
        "patient_contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=ADDRESS_MAX), nullable=False),
        sa.Column("verified_at", UTCDateTime, nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", UTCDateTime, nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("opted_out_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_contacts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_patient_contacts_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_contacts")),
        sa.UniqueConstraint(
            "patient_id",
            "kind",
            "value",
            name=op.f("uq_patient_contacts_patient_id_kind_value"),
        ),
    )
    op.create_index("ix_patient_contacts_value", "patient_contacts", ["kind", "value"])
    op.create_index(op.f("ix_patient_contacts_patient_id"), "patient_contacts", ["patient_id"])
    op.create_table(
        "patient_preferences",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("preferred_channel", sa.String(length=8), nullable=False),
        sa.Column("generic_or_brand", sa.String(length=8), nullable=True),
        sa.Column("pickup_or_delivery", sa.String(length=8), nullable=True),
        sa.Column("ninety_day_supply", sa.Boolean(), nullable=False),
        sa.Column("easy_open_caps", sa.Boolean(), nullable=False),
        sa.Column("large_print_labels", sa.Boolean(), nullable=False),
        sa.Column("representative", JSON_DOC, nullable=True),
        sa.Column("consent", JSON_DOC, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_preferences_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patient_preferences")),
    )


def downgrade() -> None:
    op.drop_table("patient_preferences")
    op.drop_index(op.f("ix_patient_contacts_patient_id"), table_name="patient_contacts")
    op.drop_index("ix_patient_contacts_value", table_name="patient_contacts")
    op.drop_table("patient_contacts")
