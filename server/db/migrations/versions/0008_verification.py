"""verification: claims, urgency, notes, clarification outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("claimed_by", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_prescriptions_claimed_by_users"), "users", ["claimed_by"], ["id"]
        )
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.alter_column("urgent", server_default=None)
    op.create_table(
        "prescription_notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_prescription_notes_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_prescription_notes_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription_notes")),
    )
    op.create_index(
        op.f("ix_prescription_notes_prescription_id"), "prescription_notes", ["prescription_id"]
    )
    op.create_table(
        "clarification_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_clarification_requests_prescription_id_prescriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_clarification_requests_requested_by_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clarification_requests")),
    )
    op.create_index(
        op.f("ix_clarification_requests_prescription_id"),
        "clarification_requests",
        ["prescription_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_clarification_requests_prescription_id"), table_name="clarification_requests"
    )
    op.drop_table("clarification_requests")
    op.drop_index(op.f("ix_prescription_notes_prescription_id"), table_name="prescription_notes")
    op.drop_table("prescription_notes")
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_prescriptions_claimed_by_users"), type_="foreignkey"
        )
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("urgent")
