"""The inventory feature's tables: each pharmacy's products and lots on the shelf, every
movement of stock with the balance it left, and the lots recalled (a recall is national: it
names an NDC and a lot, not a pharmacy). Written only through :mod:`.store`."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from eprescribe.dispensing.inventory import LOT_MAX, QUANTUM, REASON_MAX

from ..db.models import Base, BigId, utcnow

_SCALE = 1000


class Quantity(TypeDecorator[Decimal]):
    """A stock quantity, stored exactly as whole thousandths (SQLite has no exact decimal
    type; SQLAlchemy would read it back through a float)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * _SCALE
        if scaled != scaled.to_integral_value():
            raise ValueError("a stock quantity has at most three decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / _SCALE).quantize(QUANTUM)


class StockProduct(Base):
    """A product (package NDC) a pharmacy stocks: its total on hand over every lot (the
    running balance the movements record), its reorder point, and what the NDC Directory
    said of it when it was received (name, DEA schedule). Its row is the lock every change
    of its stock takes first, so balances follow one order."""

    __tablename__ = "inventory_products"
    __table_args__ = (UniqueConstraint("pharmacy_id", "ndc11"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    ndc11: Mapped[str] = mapped_column(String(11))
    description: Mapped[str] = mapped_column(String(200))
    #: NCI code of the DEA schedule (C48675: Schedule II, a perpetual log); None: not controlled
    dea_schedule: Mapped[str | None] = mapped_column(String(10))
    on_hand: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    reorder_point: Mapped[Decimal | None] = mapped_column(Quantity)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StockLot(Base):
    """One lot of a product on the shelf; kept at zero, since movements name it."""

    __tablename__ = "inventory_lots"
    __table_args__ = (UniqueConstraint("product_id", "lot"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inventory_products.id"))
    lot: Mapped[str] = mapped_column(String(LOT_MAX))
    expiry: Mapped[dt.date] = mapped_column(Date)
    on_hand: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StockMovement(Base):
    """A movement of stock, never changed: the signed quantity, the product's balance and
    the lot's after it, who moved it and why, and the fill it was for. The movements of a
    Schedule II product, in ``id`` order, are its perpetual inventory."""

    __tablename__ = "inventory_movements"
    __table_args__ = (
        Index("ix_inventory_movements_product", "product_id", "id"),
        Index("ix_inventory_movements_fill", "fill_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inventory_products.id"))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inventory_lots.id"))
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    balance_after: Mapped[Decimal] = mapped_column(Quantity)
    lot_balance_after: Mapped[Decimal] = mapped_column(Quantity)
    #: the fill that took or returned it (no foreign key yet: the fills table is another
    #: migration's)
    fill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Recall(Base):
    """A recalled lot: no pharmacy may receive or dispense it."""

    __tablename__ = "inventory_recalls"

    ndc11: Mapped[str] = mapped_column(String(11), primary_key=True)
    lot: Mapped[str] = mapped_column(String(LOT_MAX), primary_key=True)
    reason: Mapped[str] = mapped_column(String(REASON_MAX))
    recalled_by: Mapped[str] = mapped_column(String(100))
    recalled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
