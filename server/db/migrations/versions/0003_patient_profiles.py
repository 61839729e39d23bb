"""patient profiles

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("last_name_key", sa.String(length=100), nullable=False),
        sa.Column("first_name_key", sa.String(length=100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=False),
        sa.Column("postal_code", sa.String(length=5), nullable=False),
        sa.Column("demographics", JSON_DOC, nullable=False),
        sa.Column("allergies", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_patients_pharmacy_id_pharmacies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patients_match",
            ["pharmacy_id", "last_name_key", "first_name_key", "date_of_birth"],
            unique=False,
        )

    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_prescriptions_patient_state", ["patient_id", "state"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_prescriptions_patient_id_patients"), "patients", ["patient_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_prescriptions_patient_id_patients"), type_="foreignkey"
        )
        batch_op.drop_index("ix_prescriptions_patient_state")
        batch_op.drop_column("patient_id")

    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index("ix_patients_match")

    op.drop_table("patients")
