"""patients: coded allergy entries of their own (added and removed by staff, kept), and the
indexes the profile's timeline and search read by

The free-text entries the profile held (``patients.allergies``) become rows (free text, added
by nobody known, at the profile's last change) and the column goes: the entries have one
home.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
# frozen copies of the models' types: a migration must not change when models do
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TEXT_MAX = 105
CODE_MAX = 35


def upgrade() -> None:
    allergies = op.create_table(
        "patient_allergies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(length=TEXT_MAX), nullable=False),
        sa.Column("code_system", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=CODE_MAX), nullable=True),
        sa.Column("reaction", sa.String(length=TEXT_MAX), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("added_by", sa.Uuid(), nullable=True),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.Column("removed_by", sa.Uuid(), nullable=True),
        sa.Column("removed_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_allergies_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_patient_allergies_pharmacy_id_pharmacies"),
        ),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_patient_allergies_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["removed_by"], ["users.id"], name=op.f("fk_patient_allergies_removed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_allergies")),
    )
    op.create_index(
        "ix_patient_allergies_patient", "patient_allergies", ["patient_id", "removed_at"]
    )
    patients = sa.table(
        "patients",
        sa.column("id", sa.Uuid()),
        sa.column("pharmacy_id", sa.Uuid()),
        sa.column("allergies", JSON_DOC),
        sa.column("updated_at", UTCDateTime),
    )
    bind = op.get_bind()
    rows = [
        {
            "id": uuid.uuid4(),
            "patient_id": row.id,
            "pharmacy_id": row.pharmacy_id,
            "text": str(text)[:TEXT_MAX],
            "code_system": "free_text",
            "added_at": row.updated_at,
        }
        for row in bind.execute(sa.select(patients).where(patients.c.allergies.is_not(None)))
        for text in (row.allergies or [])
    ]
    if rows:
        op.bulk_insert(allergies, rows)
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("allergies")
    op.create_index("ix_patients_pharmacy_birth", "patients", ["pharmacy_id", "date_of_birth"])
    op.create_index(op.f("ix_consults_patient_id"), "consults", ["patient_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_consults_patient_id"), table_name="consults")
    op.drop_index("ix_patients_pharmacy_birth", table_name="patients")
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("allergies", JSON_DOC, nullable=True))
    bind = op.get_bind()
    entries: dict[object, list[str]] = {}
    for row in bind.execute(
        sa.text(
            "SELECT patient_id, text FROM patient_allergies WHERE removed_at IS NULL"
            " ORDER BY added_at"
        )
    ):
        entries.setdefault(row.patient_id, []).append(row.text)
    patients = sa.table("patients", sa.column("id", sa.Uuid()), sa.column("allergies", JSON_DOC))
    for patient_id, texts in entries.items():
        bind.execute(
            patients.update()
            .where(patients.c.id == sa.bindparam("pid", type_=sa.Uuid()))
            .values(allergies=texts),
            {
                "pid": patient_id
                if isinstance(patient_id, uuid.UUID)
                else uuid.UUID(str(patient_id))
            },
        )
    bind.execute(patients.update().where(patients.c.allergies.is_(None)).values(allergies=[]))
    with op.batch_alter_table("patients") as batch:
        batch.alter_column("allergies", existing_type=JSON_DOC, nullable=False)
    op.drop_index("ix_patient_allergies_patient", table_name="patient_allergies")
    op.drop_table("patient_allergies")
