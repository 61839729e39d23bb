"""Stock rules: whether a lot may be dispensed, whether it covers a quantity, running
balances and low stock. Pure: the store (``server/inventory``) reads the rows, asks these
functions, and writes what they allow.

Quantities are :class:`~decimal.Decimal` in the product's own unit (tablets, mL, g), at most
three decimal places: a fill of 7.5 mL must not become 7.4999 mL.

A refusal has a stable ``code`` for programs and plain ``words`` for the technician at the
counter; it is decided before anything is counted, so a refused fill changes nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

#: the smallest quantity the stock counts (three decimal places)
QUANTUM = Decimal("0.001")
#: the largest quantity one movement may move (no bottle holds a million units)
QUANTITY_MAX = Decimal(1_000_000)
#: a lot number as GS1 AI (10) allows it: up to 20 characters
LOT_MAX = 20
REASON_MAX = 500
#: the NCI code of DEA Schedule II (a perpetual inventory is kept of these products)
SCHEDULE_II = "C48675"

__all__ = [
    "LOT_MAX",
    "QUANTITY_MAX",
    "QUANTUM",
    "REASON_MAX",
    "SCHEDULE_II",
    "Kind",
    "LotStock",
    "Refusal",
    "StockRefused",
    "availability",
    "count_correction",
    "first_to_expire",
    "is_low",
    "quantity",
    "receipt_refusal",
    "running_balances",
    "take_refusal",
]


class Kind(enum.StrEnum):
    """What moved stock: its sign is the quantity's."""

    RECEIVE = "receive"  # stock arrives (+)
    DISPENSE = "dispense"  # a fill takes it (-)
    RETURN = "return"  # a fill not picked up, or refused after counting, puts it back (+)
    ADJUST = "adjust"  # a count correction (+ or -), with the reason
    RECALL = "recall"  # a recalled lot leaves the shelf (-)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why stock cannot move: ``code`` is stable, ``words`` are for people."""

    code: str
    words: str
    #: what the lot holds, where that explains the refusal (insufficient stock)
    on_hand: Decimal | None = None


class StockRefused(Exception):
    """A refusal raised by a change of stock before it changed anything."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.words)
        self.refusal = refusal

    @property
    def code(self) -> str:
        return self.refusal.code

    @property
    def words(self) -> str:
        return self.refusal.words


@dataclass(frozen=True, slots=True)
class LotStock:
    """One lot of one product on one pharmacy's shelf."""

    ndc11: str
    lot: str
    expiry: dt.date
    on_hand: Decimal
    #: a recall of this NDC and lot (national: every pharmacy's shelf)
    recalled: bool = False


def quantity(value: Decimal | int | float | str) -> Decimal:
    """``value`` as a stock quantity: positive, at most :data:`QUANTITY_MAX`, three decimal
    places at most (a float is read by its shortest text, so 7.5 stays 7.5). ValueError
    otherwise."""
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError("quantity is not a number") from None
    if not amount.is_finite() or amount <= 0 or amount > QUANTITY_MAX:
        raise ValueError(f"quantity must be above 0 and at most {QUANTITY_MAX}")
    if amount != amount.quantize(QUANTUM):
        raise ValueError("quantity has more than three decimal places")
    return amount.quantize(QUANTUM)


def availability(lot: LotStock, today: dt.date) -> Refusal | None:
    """Whether ``lot`` may leave the shelf for a patient at all: not recalled, and not
    expired (a lot is good through its expiry date; the day after, it is expired)."""
    if lot.recalled:
        return Refusal(
            "lot_recalled",
            f"Lot {lot.lot} of NDC {lot.ndc11} is recalled: it may not be dispensed.",
        )
    if lot.expiry < today:
        return Refusal(
            "lot_expired",
            f"Lot {lot.lot} of NDC {lot.ndc11} expired on {lot.expiry.isoformat()}.",
        )
    return None


def take_refusal(
    ndc11: str, lot_code: str, lot: LotStock | None, amount: Decimal, today: dt.date
) -> Refusal | None:
    """Why ``amount`` of lot ``lot_code`` cannot be taken for a fill (None: it can). The
    lot's own state is reported before the quantity: an expired lot is expired however much
    of it there is."""
    if lot is None:
        return Refusal(
            "lot_unknown",
            f"Lot {lot_code} of NDC {ndc11} is not in this pharmacy's stock: receive it first.",
            Decimal(0),
        )
    unavailable = availability(lot, today)
    if unavailable is not None:
        return unavailable
    if lot.on_hand < amount:
        return Refusal(
            "insufficient_stock",
            f"Lot {lot.lot} of NDC {ndc11} has {_plain(lot.on_hand)} on hand; "
            f"the fill needs {_plain(amount)}.",
            lot.on_hand,
        )
    return None


def first_to_expire(
    ndc11: str, lots: Iterable[LotStock], amount: Decimal, today: dt.date
) -> LotStock | Refusal:
    """The lot a fill should take ``amount`` from when the scan did not say (a UPC carries
    no lot): the first to expire of those that may be dispensed and hold enough. Otherwise
    the refusal: no usable lot at all, or none holding enough (naming the most one holds)."""
    usable = sorted(
        (lot for lot in lots if availability(lot, today) is None), key=lambda lot: lot.expiry
    )
    if not usable:
        return Refusal(
            "insufficient_stock",
            f"NDC {ndc11} has no lot in stock that may be dispensed.",
            Decimal(0),
        )
    enough = [lot for lot in usable if lot.on_hand >= amount]
    if enough:
        return enough[0]
    most = max(lot.on_hand for lot in usable)
    return Refusal(
        "insufficient_stock",
        f"No lot of NDC {ndc11} holds {_plain(amount)}: the most one holds is {_plain(most)}.",
        most,
    )


def receipt_refusal(
    ndc11: str, lot_code: str, expiry: dt.date, recalled: bool, today: dt.date
) -> Refusal | None:
    """Why stock cannot be received: a recalled or already expired lot is not put on the
    shelf (it would only be refused at the fill)."""
    return availability(LotStock(ndc11, lot_code, expiry, Decimal(0), recalled), today)


def count_correction(on_hand: Decimal, counted: Decimal) -> Decimal:
    """The signed quantity that makes ``on_hand`` the ``counted`` quantity."""
    if counted < 0:
        raise ValueError("a count cannot be negative")
    return counted - on_hand


def running_balances(changes: Iterable[Decimal], start: Decimal = Decimal(0)) -> Iterator[Decimal]:
    """The balance after each signed change, in order, from ``start``."""
    balance = start
    for change in changes:
        balance += change
        yield balance


def is_low(on_hand: Decimal, reorder_point: Decimal | None) -> bool:
    """Low stock: at or below the reorder point (no point set: never low)."""
    return reorder_point is not None and on_hand <= reorder_point


def _plain(amount: Decimal) -> str:
    """A quantity as people write it: 30, not 30.000; 7.5, not 7.500."""
    return format(amount.normalize(), "f")
