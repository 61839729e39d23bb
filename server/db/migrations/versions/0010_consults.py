"""consults and their history

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consults",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacist_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("invite_digest", sa.String(length=64), nullable=False),
        sa.Column("invite_expires_at", TIME, nullable=False),
        sa.Column("invite_used_at", TIME, nullable=True),
        sa.Column("consent_at", TIME, nullable=True),
        sa.Column("consent_text_version", sa.String(length=40), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("counselling", sa.String(length=16), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consults_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["pharmacist_id"], ["users.id"], name=op.f("fk_consults_pharmacist_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_consults_pharmacy_id_pharmacies")
        ),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_consults_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consults")),
        sa.UniqueConstraint("invite_digest", name=op.f("uq_consults_invite_digest")),
    )
    op.create_index(op.f("ix_consults_pharmacy_id"), "consults", ["pharmacy_id"])
    op.create_table(
        "consult_steps",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("consult_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["consult_id"], ["consults.id"], name=op.f("fk_consult_steps_consult_id_consults")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_steps")),
    )
    op.create_index(op.f("ix_consult_steps_consult_id"), "consult_steps", ["consult_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_consult_steps_consult_id"), table_name="consult_steps")
    op.drop_table("consult_steps")
    op.drop_index(op.f("ix_consults_pharmacy_id"), table_name="consults")
    op.drop_table("consults")
