"""patient page: sign-in codes, patient sessions, patients' refill requests

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patient_sign_in_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["patient_contacts.id"],
            name=op.f("fk_patient_sign_in_codes_contact_id_patient_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_sign_in_codes_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_patient_sign_in_codes_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_sign_in_codes")),
    )
    op.create_index(
        op.f("ix_patient_sign_in_codes_contact_id"), "patient_sign_in_codes", ["contact_id"]
    )
    op.create_table(
        "patient_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_sessions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_patient_sessions_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_sessions")),
    )
    op.create_index(op.f("ix_patient_sessions_patient_id"), "patient_sessions", ["patient_id"])
    op.create_table(
        "patient_refill_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("handled_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_patient_refill_requests_pharmacy_id_pharmacies"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_refill_requests_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_patient_refill_requests_prescription_id_prescriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["handled_by"], ["users.id"], name=op.f("fk_patient_refill_requests_handled_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_refill_requests")),
    )
    op.create_index(
        "ix_patient_refill_requests_open", "patient_refill_requests", ["pharmacy_id", "state"]
    )
    op.create_index(
        op.f("ix_patient_refill_requests_prescription_id"),
        "patient_refill_requests",
        ["prescription_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_patient_refill_requests_prescription_id"), table_name="patient_refill_requests"
    )
    op.drop_index("ix_patient_refill_requests_open", table_name="patient_refill_requests")
    op.drop_table("patient_refill_requests")
    op.drop_index(op.f("ix_patient_sessions_patient_id"), table_name="patient_sessions")
    op.drop_table("patient_sessions")
    op.drop_index(op.f("ix_patient_sign_in_codes_contact_id"), table_name="patient_sign_in_codes")
    op.drop_table("patient_sign_in_codes")
