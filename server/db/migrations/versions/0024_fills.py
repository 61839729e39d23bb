"""fills: the fills of prescriptions and their transitions, the pharmacies' Rx numbers, and
what the prescriber asked to be told of them

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_OPEN = "state IN ('filling', 'product_check', 'ready')"
# the states of 0021 before fills existed: "dispensing" became "filling"
_RENAMED = ("dispensing", "filling")


def upgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.add_column(sa.Column("rx_number", sa.String(length=7), nullable=True))
        batch.add_column(
            sa.Column("fills_dispensed", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("rx_fill_indicator", sa.String(length=50), nullable=True))
        batch.create_unique_constraint(
            "uq_prescriptions_pharmacy_rx_number", ["pharmacy_id", "rx_number"]
        )
    op.execute(
        sa.text("UPDATE prescriptions SET state = :new WHERE state = :old").bindparams(
            old=_RENAMED[0], new=_RENAMED[1]
        )
    )
    op.create_table(
        "rx_number_sequences",
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_rx_number_sequences_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("pharmacy_id", name=op.f("pk_rx_number_sequences")),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("controlled", sa.Boolean(), nullable=False),
        sa.Column("days_supply", sa.Integer(), nullable=True),
        sa.Column("quantity_owed", sa.String(length=20), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.String(length=20), nullable=True),
        sa.Column("partial_reason", sa.Text(), nullable=True),
        sa.Column("ndc11", sa.String(length=11), nullable=True),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("drug", sa.String(length=200), nullable=True),
        sa.Column("bin", sa.String(length=20), nullable=True),
        sa.Column("filled_by", sa.Uuid(), nullable=True),
        sa.Column("checked_by", sa.Uuid(), nullable=True),
        sa.Column("handed_over_by", sa.Uuid(), nullable=True),
        sa.Column("collected_by", sa.String(length=100), nullable=True),
        sa.Column("id_checked", sa.Boolean(), nullable=True),
        sa.Column("counselling", sa.String(length=16), nullable=True),
        sa.Column("consult_id", sa.Uuid(), nullable=True),
        sa.Column("signature", sa.Boolean(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_fills_prescription_id_prescriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacies.id"], name=op.f("fk_fills_pharmacy_id_pharmacies")
        ),
        sa.ForeignKeyConstraint(["filled_by"], ["users.id"], name=op.f("fk_fills_filled_by_users")),
        sa.ForeignKeyConstraint(
            ["checked_by"], ["users.id"], name=op.f("fk_fills_checked_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["handed_over_by"], ["users.id"], name=op.f("fk_fills_handed_over_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
    )
    op.create_index(op.f("ix_fills_prescription_id"), "fills", ["prescription_id"])
    op.create_index(
        "ix_fills_pharmacy_state_since", "fills", ["pharmacy_id", "state", "state_since", "id"]
    )
    op.create_index(
        "uq_fills_one_open",
        "fills",
        ["prescription_id"],
        unique=True,
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_table(
        "fill_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("fill_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fill_id"], ["fills.id"], name=op.f("fk_fill_transitions_fill_id_fills")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fill_transitions")),
    )
    op.create_index(op.f("ix_fill_transitions_fill_id"), "fill_transitions", ["fill_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_fill_transitions_fill_id"), table_name="fill_transitions")
    op.drop_table("fill_transitions")
    op.drop_index("uq_fills_one_open", table_name="fills")
    op.drop_index("ix_fills_pharmacy_state_since", table_name="fills")
    op.drop_index(op.f("ix_fills_prescription_id"), table_name="fills")
    op.drop_table("fills")
    op.drop_table("rx_number_sequences")
    op.execute(
        sa.text("UPDATE prescriptions SET state = :old WHERE state IN (:a, :b, :c)").bindparams(
            old=_RENAMED[0], a="filling", b="product_check", c="returned_to_stock"
        )
    )
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_constraint("uq_prescriptions_pharmacy_rx_number", type_="unique")
        batch.drop_column("rx_fill_indicator")
        batch.drop_column("fills_dispensed")
        batch.drop_column("rx_number")
