"""payments: the refunds permission, each pharmacy's ledger, the payments asked of the
provider, the provider's events as processed (once each), the patients' customers at the
provider, the price list

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
REF_MAX = 255


def _pharmacy(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["pharmacy_id"], ["pharmacies.id"], name=op.f(f"fk_{table}_pharmacy_id_pharmacies")
    )


def _patient(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["patient_id"], ["patients.id"], name=op.f(f"fk_{table}_patient_id_patients")
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("refunds", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cause_type", sa.String(length=16), nullable=False),
        sa.Column("cause_id", sa.String(length=REF_MAX), nullable=False),
        sa.Column("provider_ref", sa.String(length=REF_MAX), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("refunds_entry_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        _pharmacy("ledger_entries"),
        _patient("ledger_entries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint(
            "pharmacy_id",
            "kind",
            "cause_type",
            "cause_id",
            name=op.f("uq_ledger_entries_pharmacy_id_kind_cause_type_cause_id"),
        ),
    )
    op.create_index(
        "ix_ledger_entries_patient",
        "ledger_entries",
        ["patient_id", "at", "id"],
        postgresql_include=["currency", "kind", "amount", "pharmacy_id"],
    )
    op.create_index("ix_ledger_entries_day", "ledger_entries", ["pharmacy_id", "at"])
    op.create_index(op.f("ix_ledger_entries_provider_ref"), "ledger_entries", ["provider_ref"])
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.String(length=REF_MAX), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("charge_ref", sa.String(length=REF_MAX), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        _pharmacy("payment_intents"),
        _patient("payment_intents"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intents")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_payment_intents_provider_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payment_intents_idempotency_key")),
    )
    op.create_index(op.f("ix_payment_intents_patient_id"), "payment_intents", ["patient_id"])
    op.create_table(
        "payment_cards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("setup_id", sa.String(length=REF_MAX), nullable=False),
        sa.Column("payment_method", sa.String(length=REF_MAX), nullable=True),
        sa.Column("brand", sa.String(length=20), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("exp_month", sa.Integer(), nullable=True),
        sa.Column("exp_year", sa.Integer(), nullable=True),
        sa.Column("saved", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("removed_at", UTCDateTime, nullable=True),
        _pharmacy("payment_cards"),
        _patient("payment_cards"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_cards")),
        sa.UniqueConstraint("setup_id", name=op.f("uq_payment_cards_setup_id")),
    )
    op.create_index(op.f("ix_payment_cards_patient_id"), "payment_cards", ["patient_id"])
    op.create_table(
        "payment_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        _pharmacy("payment_plans"),
        _patient("payment_plans"),
        sa.ForeignKeyConstraint(
            ["card_id"], ["payment_cards.id"], name=op.f("fk_payment_plans_card_id_payment_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plans")),
    )
    op.create_index(op.f("ix_payment_plans_patient_id"), "payment_plans", ["patient_id"])
    op.create_table(
        "payment_instalments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("intent_id", sa.Uuid(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["payment_plans.id"],
            name=op.f("fk_payment_instalments_plan_id_payment_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_instalments")),
        sa.UniqueConstraint(
            "plan_id", "number", name=op.f("uq_payment_instalments_plan_id_number")
        ),
    )
    op.create_index(
        "ix_payment_instalments_due", "payment_instalments", ["status", "next_attempt_at"]
    )
    op.create_index(op.f("ix_payment_instalments_intent_id"), "payment_instalments", ["intent_id"])
    op.create_table(
        "payment_events",
        sa.Column("id", sa.String(length=REF_MAX), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("object_id", sa.String(length=REF_MAX), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_events")),
    )
    op.create_table(
        "payment_customers",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.String(length=REF_MAX), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        _pharmacy("payment_customers"),
        _patient("payment_customers"),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_payment_customers")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_payment_customers_provider_id")),
    )
    op.create_table(
        "payment_prices",
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        _pharmacy("payment_prices"),
        sa.PrimaryKeyConstraint("pharmacy_id", "item", name=op.f("pk_payment_prices")),
    )


def downgrade() -> None:
    op.drop_table("payment_prices")
    op.drop_table("payment_customers")
    op.drop_table("payment_events")
    op.drop_index(op.f("ix_payment_instalments_intent_id"), table_name="payment_instalments")
    op.drop_index("ix_payment_instalments_due", table_name="payment_instalments")
    op.drop_table("payment_instalments")
    op.drop_index(op.f("ix_payment_plans_patient_id"), table_name="payment_plans")
    op.drop_table("payment_plans")
    op.drop_index(op.f("ix_payment_cards_patient_id"), table_name="payment_cards")
    op.drop_table("payment_cards")
    op.drop_index(op.f("ix_payment_intents_patient_id"), table_name="payment_intents")
    op.drop_table("payment_intents")
    op.drop_index(op.f("ix_ledger_entries_provider_ref"), table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_day", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_patient", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("refunds")
