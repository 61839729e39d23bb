"""scheduled notices: job leases, notice occasions, pharmacy switches, shipments, med sync

``job_leases``: the one hub process that runs a periodic job. ``notice_occasions``: one row a
scheduled notice's occasion (kind, subject), so a job run twice writes it once.
``pharmacy_notice_switches``: an event kind switched off for a pharmacy (no row: on).
``shipments``: a ready fill shipped with carrier and tracking number, then delivered.
``med_sync``: a patient's sync day and the short fills a pharmacist accepted.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("last_run_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    op.create_table(
        "notice_occasions",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_notice_occasions_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("kind", "subject_id", name=op.f("pk_notice_occasions")),
    )
    op.create_index(op.f("ix_notice_occasions_pharmacy_id"), "notice_occasions", ["pharmacy_id"])
    op.create_table(
        "pharmacy_notice_switches",
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_pharmacy_notice_switches_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("pharmacy_id", "kind", name=op.f("pk_pharmacy_notice_switches")),
    )
    op.create_table(
        "shipments",
        sa.Column("fill_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("carrier", sa.String(length=16), nullable=False),
        sa.Column("tracking_number", sa.String(length=40), nullable=False),
        sa.Column("tracking_url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("shipped_by", sa.Uuid(), nullable=True),
        sa.Column("shipped_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(["fill_id"], ["fills.id"], name=op.f("fk_shipments_fill_id_fills")),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_shipments_pharmacy_id_pharmacies")
        ),
        sa.ForeignKeyConstraint(
            ["shipped_by"], ["users.id"], name=op.f("fk_shipments_shipped_by_users")
        ),
        sa.PrimaryKeyConstraint("fill_id", name=op.f("pk_shipments")),
    )
    op.create_index(op.f("ix_shipments_pharmacy_id"), "shipments", ["pharmacy_id"])
    op.create_table(
        "med_sync",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("anchor", sa.Date(), nullable=False),
        sa.Column("cycle_days", sa.Integer(), nullable=False),
        sa.Column("short_fills", JSONDoc, nullable=False),
        sa.Column("accepted_by", sa.Uuid(), nullable=False),
        sa.Column("accepted_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_med_sync_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_med_sync_pharmacy_id_pharmacies")
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["users.id"], name=op.f("fk_med_sync_accepted_by_users")
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_med_sync")),
    )
    op.create_index(op.f("ix_med_sync_pharmacy_id"), "med_sync", ["pharmacy_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_med_sync_pharmacy_id"), table_name="med_sync")
    op.drop_table("med_sync")
    op.drop_index(op.f("ix_shipments_pharmacy_id"), table_name="shipments")
    op.drop_table("shipments")
    op.drop_table("pharmacy_notice_switches")
    op.drop_index(op.f("ix_notice_occasions_pharmacy_id"), table_name="notice_occasions")
    op.drop_table("notice_occasions")
    op.drop_table("job_leases")
