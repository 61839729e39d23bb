"""prescriber answers: RxChangeResponse and RxRenewalResponse matched to the hub's request;
a prescription names the one it replaces or renews, and a confirmed prior authorization

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.add_column(sa.Column("replaces_prescription_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("replacement", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("prior_authorization", sa.String(length=35), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_prescriptions_replaces_prescription_id_prescriptions"),
            "prescriptions",
            ["replaces_prescription_id"],
            ["id"],
        )
        batch.create_index(
            batch.f("ix_prescriptions_replaces_prescription_id"), ["replaces_prescription_id"]
        )
    op.create_table(
        "prescriber_answers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("inbound_message_id", sa.Uuid(), nullable=False),
        sa.Column("transaction", sa.String(length=40), nullable=False),
        sa.Column("response", sa.String(length=24), nullable=False),
        sa.Column("reason_codes", sa.String(length=40), nullable=True),
        sa.Column("reference_number", sa.String(length=35), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("new_prescription_id", sa.Uuid(), nullable=True),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_prescriber_answers_prescription_id_prescriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["outbound_messages.id"],
            name=op.f("fk_prescriber_answers_request_id_outbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_prescriber_answers_inbound_message_id_inbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["new_prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_prescriber_answers_new_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescriber_answers")),
        sa.UniqueConstraint("request_id", name=op.f("uq_prescriber_answers_request_id")),
        sa.UniqueConstraint(
            "inbound_message_id", name=op.f("uq_prescriber_answers_inbound_message_id")
        ),
    )
    op.create_index(
        op.f("ix_prescriber_answers_prescription_id"), "prescriber_answers", ["prescription_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_prescriber_answers_prescription_id"), table_name="prescriber_answers")
    op.drop_table("prescriber_answers")
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_index(batch.f("ix_prescriptions_replaces_prescription_id"))
        batch.drop_constraint(
            batch.f("fk_prescriptions_replaces_prescription_id_prescriptions"), type_="foreignkey"
        )
        batch.drop_column("prior_authorization")
        batch.drop_column("replacement")
        batch.drop_column("replaces_prescription_id")
