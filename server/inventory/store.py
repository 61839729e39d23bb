"""Stock in the database: the one writer of the inventory tables.

The functions take a blocking :class:`~sqlalchemy.orm.Session` and work inside the caller's
unit of work; none of them commits. The fill flow calls :func:`check` before counting,
:func:`take` when the product is counted and :func:`put_back` when a fill goes back to stock,
in its own transaction (through ``AsyncSession.run_sync``, or the ``*_async`` forms), and
puts :func:`movement_detail` of what they return into its own audit entry: the audit entry is
the last statement of a unit of work (the chain head is the last lock it takes), so nothing
here writes one. :class:`Inventory` runs the inventory's own actions (receipts, counts,
reorder points, recalls) each in a unit of work of its own, audited.

Locks: a change of stock locks the product's row (``inventory_products``) first and then the
lot's, so two fills taking the last units of a product wait for each other and the second
sees what the first left (on SQLite, writers are serialised by ``BEGIN IMMEDIATE``). Every
change is decided by :mod:`eprescribe.dispensing.inventory` before anything is written: a
refusal (:class:`StockRefused`) leaves the rows as they were.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe.dispensing import inventory as rules
from eprescribe.dispensing.inventory import Kind, LotStock, Refusal, StockRefused

from .. import audit
from ..db.models import utcnow
from .directory import Listing, resolve
from .models import Recall, StockLot, StockMovement, StockProduct

__all__ = [
    "Movement",
    "Receipt",
    "StockRefused",
    "check",
    "check_async",
    "lot_expiry",
    "movement_detail",
    "pick_lot",
    "pick_lot_async",
    "put_back",
    "put_back_async",
    "take",
    "take_async",
]


@dataclass(frozen=True, slots=True)
class Movement:
    """A movement of stock as stored: the signed quantity and the balances it left."""

    id: int
    kind: Kind
    ndc11: str
    lot: str
    expiry: dt.date
    quantity: Decimal
    #: the product's on hand (every lot) after the movement: the perpetual log's balance
    balance_after: Decimal
    lot_balance_after: Decimal
    fill_id: uuid.UUID | None
    actor: str
    reason: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Receipt:
    """Stock arriving: the NDC's 11-digit readings (one when the code says which), the lot
    and its expiry, and how much."""

    ndc11_candidates: tuple[str, ...]
    lot: str
    expiry: dt.date
    quantity: Decimal
    #: the package's serial number (GS1 AI 21), when scanned: audited, not stocked by
    serial: str | None = None


# -- reading ------------------------------------------------------------------------------


def _today() -> dt.date:
    return utcnow().date()


def _product(
    session: Session, pharmacy_id: uuid.UUID, ndc11: str, *, lock: bool = False
) -> StockProduct | None:
    query = select(StockProduct).where(
        StockProduct.pharmacy_id == pharmacy_id, StockProduct.ndc11 == ndc11
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def _lot(
    session: Session, product_id: uuid.UUID, lot: str, *, lock: bool = False
) -> StockLot | None:
    query = select(StockLot).where(StockLot.product_id == product_id, StockLot.lot == lot)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def recalled(session: Session, ndc11: str, lot: str) -> bool:
    return (
        session.scalar(select(Recall.reason).where(Recall.ndc11 == ndc11, Recall.lot == lot))
        is not None
    )


def _stock(
    session: Session, product: StockProduct | None, lot: str, *, lock: bool
) -> tuple[StockLot | None, LotStock | None]:
    row = None if product is None else _lot(session, product.id, lot, lock=lock)
    if product is None or row is None:
        return None, None
    value = LotStock(
        product.ndc11, row.lot, row.expiry, row.on_hand, recalled(session, product.ndc11, lot)
    )
    return row, value


# -- what the fill flow calls ---------------------------------------------------------------


def check(
    session: Session,
    pharmacy_id: uuid.UUID,
    ndc11: str,
    lot: str,
    quantity: Decimal | int,
    today: dt.date | None = None,
) -> Refusal | None:
    """Whether :func:`take` would take ``quantity`` of the lot now (None) or why not; reads
    only, locks nothing: the fill asks before it counts, and :func:`take` decides again."""
    amount = _amount(quantity)
    product = _product(session, pharmacy_id, ndc11)
    _, value = _stock(session, product, lot, lock=False)
    return rules.take_refusal(ndc11, lot, value, amount, today or _today())


def lot_expiry(session: Session, pharmacy_id: uuid.UUID, ndc11: str, lot: str) -> dt.date | None:
    """The expiry the lot was received with (None: the pharmacy does not stock it): what a fill
    reads when the scan carried no expiry (a UPC), and compares with one that did."""
    product = _product(session, pharmacy_id, ndc11)
    row = None if product is None else _lot(session, product.id, lot)
    return None if row is None else row.expiry


def pick_lot(
    session: Session,
    pharmacy_id: uuid.UUID,
    ndc11: str,
    quantity: Decimal | int,
    today: dt.date | None = None,
) -> str:
    """The lot to take ``quantity`` from when the scan named none (a UPC): the first to
    expire that may be dispensed and holds enough. StockRefused ``insufficient_stock``
    otherwise. Reads only; :func:`take` decides again under its locks."""
    amount = _amount(quantity)
    product = _product(session, pharmacy_id, ndc11)
    stock = [] if product is None else on_hand(session, pharmacy_id, ndcs=[ndc11])[0].lots
    picked = rules.first_to_expire(ndc11, stock, amount, today or _today())
    if isinstance(picked, Refusal):
        raise StockRefused(picked)
    return picked.lot


def take(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    ndc11: str,
    lot: str,
    quantity: Decimal | int,
    fill_id: uuid.UUID | None,
    today: dt.date | None = None,
) -> Movement:
    """Take ``quantity`` of the lot off the shelf for fill ``fill_id`` (a ``dispense``
    movement), the product's and the lot's rows locked. StockRefused (``lot_unknown``,
    ``lot_recalled``, ``lot_expired``, ``insufficient_stock``) before anything changes."""
    amount = _amount(quantity)
    product = _product(session, pharmacy_id, ndc11, lock=True)
    row, value = _stock(session, product, lot, lock=True)
    refusal = rules.take_refusal(ndc11, lot, value, amount, today or _today())
    if refusal is not None:
        raise StockRefused(refusal)
    # the rules refuse a lot that is not there
    assert product is not None
    assert row is not None
    return _move(session, actor, product, row, Kind.DISPENSE, -amount, fill_id, None)


def put_back(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    fill_id: uuid.UUID,
    reason: str,
) -> list[Movement]:
    """Return to the shelf exactly what fill ``fill_id`` took and has not yet had back
    (``return`` movements, lot by lot); nothing when that is nothing, so calling it again
    changes nothing. An expired or recalled lot goes back too: the count must match what is
    on the shelf, and the lot is refused at the next fill."""
    products = sorted(
        set(
            session.scalars(
                select(StockMovement.product_id).where(
                    StockMovement.fill_id == fill_id, StockMovement.pharmacy_id == pharmacy_id
                )
            )
        )
    )
    moved: list[Movement] = []
    for product_id in products:  # in ID order: two fills' returns cannot deadlock
        product = session.scalar(
            select(StockProduct)
            .where(StockProduct.id == product_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert product is not None
        owed = session.execute(
            select(StockMovement.lot_id, func.sum(StockMovement.quantity))
            .where(StockMovement.fill_id == fill_id, StockMovement.product_id == product_id)
            .group_by(StockMovement.lot_id)
            .order_by(StockMovement.lot_id)
        ).all()
        for lot_id, net in owed:
            if net is not None and net < 0:
                lot = session.scalar(
                    select(StockLot)
                    .where(StockLot.id == lot_id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
                assert lot is not None
                moved.append(
                    _move(session, actor, product, lot, Kind.RETURN, -net, fill_id, reason)
                )
    return moved


async def check_async(
    session: AsyncSession,
    pharmacy_id: uuid.UUID,
    ndc11: str,
    lot: str,
    quantity: Decimal | int,
) -> Refusal | None:
    """:func:`check` from the event loop."""
    return await session.run_sync(lambda s: check(s, pharmacy_id, ndc11, lot, quantity))


async def pick_lot_async(
    session: AsyncSession, pharmacy_id: uuid.UUID, ndc11: str, quantity: Decimal | int
) -> str:
    """:func:`pick_lot` from the event loop."""
    return await session.run_sync(lambda s: pick_lot(s, pharmacy_id, ndc11, quantity))


async def take_async(
    session: AsyncSession,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    ndc11: str,
    lot: str,
    quantity: Decimal | int,
    fill_id: uuid.UUID | None,
) -> Movement:
    """:func:`take` from the event loop."""
    return await session.run_sync(
        lambda s: take(s, actor, pharmacy_id, ndc11, lot, quantity, fill_id)
    )


async def put_back_async(
    session: AsyncSession,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    fill_id: uuid.UUID,
    reason: str,
) -> list[Movement]:
    """:func:`put_back` from the event loop."""
    return await session.run_sync(lambda s: put_back(s, actor, pharmacy_id, fill_id, reason))


def movement_detail(movement: Movement) -> dict[str, Any]:
    """What an audit entry says of a movement (the product, never the patient)."""
    return {
        "movement": movement.id,
        "kind": str(movement.kind),
        "ndc11": movement.ndc11,
        "lot": movement.lot,
        "quantity": str(movement.quantity),
        "balance_after": str(movement.balance_after),
    }


# -- the inventory's own changes --------------------------------------------------------------


def receive(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    receipt: Receipt,
    today: dt.date | None = None,
) -> Movement:
    """Put received stock on the shelf (a ``receive`` movement): the product is found in the
    NDC Directory (or the pharmacy's own products); a recalled or expired lot, or a lot
    received before with another expiry, is refused."""
    amount = _amount(receipt.quantity)
    lot_code = _lot_code(receipt.lot)
    listing = resolve(session, pharmacy_id, receipt.ndc11_candidates)
    refusal = rules.receipt_refusal(
        listing.ndc11,
        lot_code,
        receipt.expiry,
        recalled(session, listing.ndc11, lot_code),
        today or _today(),
    )
    if refusal is not None:
        raise StockRefused(refusal)
    known = _product(session, pharmacy_id, listing.ndc11, lock=True)
    lot = None if known is None else _lot(session, known.id, lot_code, lock=True)
    _same_expiry(lot, listing.ndc11, receipt)
    # decided: from here on it only writes
    product = _stocked_product(session, pharmacy_id, listing)
    if lot is None:
        # another receipt of this new product may have made the lot meanwhile (the product
        # row it inserted is the one locked now): read it again, so it is added to, not made
        # twice (a unique violation); a refusal here writes nothing (the product is theirs)
        lot = _lot(session, product.id, lot_code, lock=True)
        _same_expiry(lot, listing.ndc11, receipt)
    if lot is None:
        lot = StockLot(product_id=product.id, lot=lot_code, expiry=receipt.expiry)
        lot.on_hand = Decimal(0)
        session.add(lot)
        session.flush()
    return _move(session, actor, product, lot, Kind.RECEIVE, amount, None, None)


def _same_expiry(lot: StockLot | None, ndc11: str, receipt: Receipt) -> None:
    """A lot received again comes with the expiry it was received with."""
    if lot is not None and lot.expiry != receipt.expiry:
        raise StockRefused(
            Refusal(
                "lot_expiry_mismatch",
                f"Lot {lot.lot} of NDC {ndc11} was received with expiry "
                f"{lot.expiry.isoformat()}, not {receipt.expiry.isoformat()}: check the "
                "package.",
            )
        )


def adjust(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    ndc11: str,
    lot: str,
    counted: Decimal,
    reason: str,
    *,
    may_adjust_schedule_ii: bool,
) -> Movement | None:
    """Correct the lot's count to ``counted`` (an ``adjust`` movement of the difference, with
    the reason); None when the count was right. A Schedule II count is a pharmacist's
    (``may_adjust_schedule_ii``): StockRefused ``schedule_ii_pharmacist`` otherwise."""
    product = _product(session, pharmacy_id, ndc11, lock=True)
    row = None if product is None else _lot(session, product.id, lot, lock=True)
    if product is None or row is None:
        raise StockRefused(
            Refusal("lot_unknown", f"Lot {lot} of NDC {ndc11} is not in this pharmacy's stock.")
        )
    if product.dea_schedule == rules.SCHEDULE_II and not may_adjust_schedule_ii:
        raise StockRefused(
            Refusal(
                "schedule_ii_pharmacist",
                "Only a pharmacist with the controlled-substance permission may correct the count"
                " of a Schedule II product.",
            )
        )
    change = rules.count_correction(row.on_hand, counted)
    if change == 0:
        return None
    return _move(session, actor, product, row, Kind.ADJUST, change, None, reason)


def recall(
    session: Session, actor: audit.Actor, ndc11: str, lot: str, reason: str
) -> list[Movement]:
    """Recall the lot everywhere: no pharmacy may receive or dispense it from now on, and
    what each pharmacy holds leaves its shelf (a ``recall`` movement). Recalling a lot twice
    changes nothing more."""
    lot_code = _lot_code(lot)
    if recalled(session, ndc11, lot_code):
        return []
    session.add(Recall(ndc11=ndc11, lot=lot_code, reason=reason, recalled_by=str(actor)[:100]))
    products = list(
        session.scalars(
            select(StockProduct)
            .where(StockProduct.ndc11 == ndc11)
            .order_by(StockProduct.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    moved = []
    for product in products:
        row = _lot(session, product.id, lot_code, lock=True)
        if row is not None and row.on_hand > 0:
            moved.append(
                _move(session, actor, product, row, Kind.RECALL, -row.on_hand, None, reason)
            )
    return moved


def set_reorder_point(
    session: Session, pharmacy_id: uuid.UUID, ndc11: str, point: Decimal | None
) -> StockProduct | None:
    """Set (or clear, with None) the product's reorder point; None for a product the
    pharmacy does not stock."""
    product = _product(session, pharmacy_id, ndc11, lock=True)
    if product is not None:
        product.reorder_point = point
        product.updated_at = utcnow()
    return product


# -- reading for people -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductStock:
    """A product on the shelf: its total, its reorder point and its lots."""

    ndc11: str
    description: str
    dea_schedule: str | None
    on_hand: Decimal
    reorder_point: Decimal | None
    lots: tuple[LotStock, ...]

    @property
    def low(self) -> bool:
        return rules.is_low(self.on_hand, self.reorder_point)


def on_hand(
    session: Session,
    pharmacy_id: uuid.UUID,
    *,
    low: bool = False,
    ndcs: Sequence[str] | None = None,
) -> list[ProductStock]:
    """The pharmacy's products by NDC with their lots (expiring first); ``low``: only those
    at or below their reorder point; ``ndcs``: only these products."""
    query = select(StockProduct).where(StockProduct.pharmacy_id == pharmacy_id)
    if ndcs is not None:
        query = query.where(StockProduct.ndc11.in_(sorted(set(ndcs))))
    if low:
        query = query.where(
            StockProduct.reorder_point.is_not(None),
            StockProduct.on_hand <= StockProduct.reorder_point,
        )
    products = list(session.scalars(query.order_by(StockProduct.ndc11)))
    lots: dict[uuid.UUID, list[StockLot]] = {p.id: [] for p in products}
    if products:
        for row in session.scalars(
            select(StockLot)
            .where(StockLot.product_id.in_(list(lots)))
            .order_by(StockLot.expiry, StockLot.lot)
        ):
            lots[row.product_id].append(row)
    recalls = _recalls(session, {p.ndc11 for p in products})
    return [
        ProductStock(
            p.ndc11,
            p.description,
            p.dea_schedule,
            p.on_hand,
            p.reorder_point,
            tuple(
                LotStock(p.ndc11, r.lot, r.expiry, r.on_hand, (p.ndc11, r.lot) in recalls)
                for r in lots[p.id]
            ),
        )
        for p in products
    ]


def movements(session: Session, pharmacy_id: uuid.UUID, ndc11: str) -> list[Movement] | None:
    """Every movement of the product, oldest first, with the balance each left (for a
    Schedule II product, its perpetual inventory); None when the pharmacy does not stock it."""
    product = _product(session, pharmacy_id, ndc11)
    if product is None:
        return None
    rows = session.execute(
        select(StockMovement, StockLot.lot, StockLot.expiry)
        .join(StockLot, StockLot.id == StockMovement.lot_id)
        .where(StockMovement.product_id == product.id)
        .order_by(StockMovement.id)
    ).all()
    return [_movement(row, ndc11, lot, expiry) for row, lot, expiry in rows]


def _recalls(session: Session, ndcs: set[str]) -> set[tuple[str, str]]:
    if not ndcs:
        return set()
    rows = session.execute(select(Recall.ndc11, Recall.lot).where(Recall.ndc11.in_(sorted(ndcs))))
    return {(ndc, lot) for ndc, lot in rows}


# -- writing ------------------------------------------------------------------------------------


def _stocked_product(session: Session, pharmacy_id: uuid.UUID, listing: Listing) -> StockProduct:
    """The pharmacy's product row for ``listing``, made on its first receipt, locked; what
    the directory says of it now is kept (a schedule can change)."""
    product = _product(session, pharmacy_id, listing.ndc11, lock=True)
    if product is None:
        from ..db import insert_ignoring_conflicts

        dialect = session.get_bind().dialect.name
        session.execute(
            insert_ignoring_conflicts(StockProduct, dialect).values(
                id=uuid.uuid4(),
                pharmacy_id=pharmacy_id,
                ndc11=listing.ndc11,
                description=listing.description,
                dea_schedule=listing.dea_schedule,
                on_hand=Decimal(0),
                updated_at=utcnow(),
            )
        )
        product = _product(session, pharmacy_id, listing.ndc11, lock=True)
        assert product is not None
    product.description = listing.description
    product.dea_schedule = listing.dea_schedule
    return product


def _move(
    session: Session,
    actor: audit.Actor,
    product: StockProduct,
    lot: StockLot,
    kind: Kind,
    change: Decimal,
    fill_id: uuid.UUID | None,
    reason: str | None,
) -> Movement:
    """Apply a decided change to the locked rows and record it with the balances it left."""
    now = utcnow()
    lot.on_hand = lot.on_hand + change
    product.on_hand = product.on_hand + change
    product.updated_at = now
    row = StockMovement(
        pharmacy_id=product.pharmacy_id,
        product_id=product.id,
        lot_id=lot.id,
        kind=str(kind),
        quantity=change,
        balance_after=product.on_hand,
        lot_balance_after=lot.on_hand,
        fill_id=fill_id,
        actor=str(actor)[:100],
        reason=reason,
        at=now,
    )
    session.add(row)
    session.flush()
    return _movement(row, product.ndc11, lot.lot, lot.expiry)


def _movement(row: StockMovement, ndc11: str, lot: str, expiry: dt.date) -> Movement:
    return Movement(
        id=row.id,
        kind=Kind(row.kind),
        ndc11=ndc11,
        lot=lot,
        expiry=expiry,
        quantity=row.quantity,
        balance_after=row.balance_after,
        lot_balance_after=row.lot_balance_after,
        fill_id=row.fill_id,
        actor=row.actor,
        reason=row.reason,
        at=row.at,
    )


def _amount(quantity: Decimal | int) -> Decimal:
    try:
        return rules.quantity(quantity)
    except ValueError as exc:
        raise StockRefused(
            Refusal("quantity_invalid", f"The quantity is not valid: {exc}.")
        ) from None


def _lot_code(lot: str) -> str:
    code = lot.strip()
    if not 0 < len(code) <= rules.LOT_MAX or not code.isprintable():
        raise StockRefused(
            Refusal("lot_invalid", f"A lot number is 1 to {rules.LOT_MAX} printable characters.")
        )
    return code


# -- the inventory's own actions, audited -------------------------------------------------------


def audit_rows(
    actor: audit.Actor,
    action: str,
    moved: Sequence[Movement],
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One audit row per movement of an inventory action (with ``extra``: what the movement
    does not say, e.g. the scanned serial)."""
    return [
        audit.values(
            actor,
            audit.Event(
                f"inventory.{action}",
                "inventory_product",
                m.ndc11,
                detail={**movement_detail(m), **(extra or {})},
            ),
        )
        for m in moved
    ]
