"""inventory: each pharmacy's products and lots on the shelf, every movement of stock with
the balance it left, and recalled lots

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")
#: a stock quantity in whole thousandths (server.inventory.models.Quantity)
QUANTITY = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "inventory_recalls",
        sa.Column("ndc11", sa.String(length=11), nullable=False),
        sa.Column("lot", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("recalled_by", sa.String(length=100), nullable=False),
        sa.Column("recalled_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("ndc11", "lot", name=op.f("pk_inventory_recalls")),
    )
    op.create_table(
        "inventory_products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("ndc11", sa.String(length=11), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("dea_schedule", sa.String(length=10), nullable=True),
        sa.Column("on_hand", QUANTITY, nullable=False),
        sa.Column("reorder_point", QUANTITY, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_inventory_products_pharmacy_id_pharmacies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_products")),
        sa.UniqueConstraint(
            "pharmacy_id", "ndc11", name=op.f("uq_inventory_products_pharmacy_id_ndc11")
        ),
    )
    op.create_table(
        "inventory_lots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("lot", sa.String(length=20), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("on_hand", QUANTITY, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["inventory_products.id"],
            name=op.f("fk_inventory_lots_product_id_inventory_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_lots")),
        sa.UniqueConstraint("product_id", "lot", name=op.f("uq_inventory_lots_product_id_lot")),
    )
    op.create_table(
        "inventory_movements",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("balance_after", QUANTITY, nullable=False),
        sa.Column("lot_balance_after", QUANTITY, nullable=False),
        sa.Column("fill_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["inventory_lots.id"],
            name=op.f("fk_inventory_movements_lot_id_inventory_lots"),
        ),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"],
            ["pharmacies.id"],
            name=op.f("fk_inventory_movements_pharmacy_id_pharmacies"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["inventory_products.id"],
            name=op.f("fk_inventory_movements_product_id_inventory_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_movements")),
    )
    op.create_index("ix_inventory_movements_fill", "inventory_movements", ["fill_id"])
    op.create_index("ix_inventory_movements_product", "inventory_movements", ["product_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_inventory_movements_product", table_name="inventory_movements")
    op.drop_index("ix_inventory_movements_fill", table_name="inventory_movements")
    op.drop_table("inventory_movements")
    op.drop_table("inventory_lots")
    op.drop_table("inventory_products")
    op.drop_table("inventory_recalls")
