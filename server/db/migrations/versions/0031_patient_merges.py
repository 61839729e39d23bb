"""patients: merges of two profiles by a pharmacist, and a merged profile's survivor

``patients.merged_into_id``: the profile a merged one was merged into (kept, never deleted).
``patient_merges``: each merge with the rows it moved, so an unmerge moves exactly those back.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
# frozen copies of the models' types: a migration must not change when models do
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_patients_merged_into_id_patients"), "patients", ["merged_into_id"], ["id"]
        )
    op.create_table(
        "patient_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=False),
        sa.Column("merged_id", sa.Uuid(), nullable=False),
        sa.Column("merged_by", sa.Uuid(), nullable=False),
        sa.Column("moved", JSON_DOC, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("unmerged_at", UTCDateTime, nullable=True),
        sa.Column("unmerged_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_patient_merges_pharmacy_id_pharmacies"),
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["patients.id"], name=op.f("fk_patient_merges_survivor_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["patients.id"], name=op.f("fk_patient_merges_merged_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["merged_by"], ["users.id"], name=op.f("fk_patient_merges_merged_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["unmerged_by"], ["users.id"], name=op.f("fk_patient_merges_unmerged_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_merges")),
    )
    op.create_index(op.f("ix_patient_merges_survivor_id"), "patient_merges", ["survivor_id"])
    op.create_index(op.f("ix_patient_merges_merged_id"), "patient_merges", ["merged_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_patient_merges_merged_id"), table_name="patient_merges")
    op.drop_index(op.f("ix_patient_merges_survivor_id"), table_name="patient_merges")
    op.drop_table("patient_merges")
    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint(op.f("fk_patients_merged_into_id_patients"), type_="foreignkey")
        batch.drop_column("merged_into_id")
