"""notifications: the patient notification outbox (email and SMS, rendered, with delivery)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
#: server.notifications.models.RECIPIENT_MAX (frozen here: a migration must not change)
RECIPIENT_MAX = 320


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("recipient", sa.String(length=RECIPIENT_MAX), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("dead_after", UTCDateTime, nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("provider_status", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_notifications_pharmacy_id_pharmacies"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_notifications_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_state_due", "notifications", ["state", "next_attempt_at"])
    op.create_index(op.f("ix_notifications_pharmacy_id"), "notifications", ["pharmacy_id"])
    op.create_index(op.f("ix_notifications_patient_id"), "notifications", ["patient_id"])
    op.create_index(op.f("ix_notifications_provider_id"), "notifications", ["provider_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notifications_provider_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_patient_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_pharmacy_id"), table_name="notifications")
    op.drop_index("ix_notifications_state_due", table_name="notifications")
    op.drop_table("notifications")
