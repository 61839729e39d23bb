"""The stock rules: availability of a lot, taking a quantity, receipts, counts, running
balances and low stock."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from eprescribe.dispensing.inventory import (
    LotStock,
    count_correction,
    first_to_expire,
    is_low,
    quantity,
    receipt_refusal,
    running_balances,
    take_refusal,
)

TODAY = dt.date(2026, 12, 6)
NDC = "99999041090"


def lot(on_hand: str = "30", expiry: dt.date = TODAY, recalled: bool = False) -> LotStock:
    return LotStock(NDC, "L1", expiry, Decimal(on_hand), recalled)


def code(refusal: object) -> str | None:
    return getattr(refusal, "code", None)


def test_a_lot_is_good_through_its_expiry_day() -> None:
    assert take_refusal(NDC, "L1", lot(), Decimal(30), TODAY) is None
    expired = take_refusal(NDC, "L1", lot(), Decimal(1), TODAY + dt.timedelta(days=1))
    assert code(expired) == "lot_expired"
    assert expired is not None
    assert "expired on 2026-12-06" in expired.words


def test_the_lot_is_judged_before_the_quantity() -> None:
    recalled_and_short = lot("1", recalled=True)
    assert code(take_refusal(NDC, "L1", recalled_and_short, Decimal(5), TODAY)) == "lot_recalled"
    expired_and_short = lot("1", TODAY - dt.timedelta(days=1))
    assert code(take_refusal(NDC, "L1", expired_and_short, Decimal(5), TODAY)) == "lot_expired"


def test_insufficient_stock_names_what_is_on_hand() -> None:
    refusal = take_refusal(NDC, "L1", lot("7.5"), Decimal(30), TODAY)
    assert refusal is not None
    assert (refusal.code, refusal.on_hand) == ("insufficient_stock", Decimal("7.5"))
    assert refusal.words == f"Lot L1 of NDC {NDC} has 7.5 on hand; the fill needs 30."


def test_an_unknown_lot_is_refused() -> None:
    assert code(take_refusal(NDC, "ZZ", None, Decimal(1), TODAY)) == "lot_unknown"


def test_receipts_of_expired_or_recalled_lots_are_refused() -> None:
    assert receipt_refusal(NDC, "L1", TODAY, False, TODAY) is None
    assert code(receipt_refusal(NDC, "L1", TODAY, True, TODAY)) == "lot_recalled"
    yesterday = TODAY - dt.timedelta(days=1)
    assert code(receipt_refusal(NDC, "L1", yesterday, False, TODAY)) == "lot_expired"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(30, Decimal(30)), (7.5, Decimal("7.5")), ("0.001", Decimal("0.001")), (0.1, Decimal("0.1"))],
)
def test_quantities(given: int | float | str, expected: Decimal) -> None:
    assert quantity(given) == expected


@pytest.mark.parametrize("given", [0, -1, "0.0001", "NaN", "Infinity", "abc", 10_000_001])
def test_quantities_refused(given: int | str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        quantity(given)


def test_count_corrections_and_running_balances() -> None:
    assert count_correction(Decimal(100), Decimal(97)) == Decimal(-3)
    with pytest.raises(ValueError, match="negative"):
        count_correction(Decimal(1), Decimal(-1))
    changes = [Decimal(100), Decimal(-30), Decimal(-1), Decimal(30)]
    assert list(running_balances(changes)) == [Decimal(100), Decimal(70), Decimal(69), Decimal(99)]


def test_low_stock_is_at_or_below_the_point() -> None:
    assert is_low(Decimal(30), Decimal(30))
    assert not is_low(Decimal(31), Decimal(30))
    assert not is_low(Decimal(0), None)


def test_the_first_lot_to_expire_that_holds_enough_is_picked() -> None:
    soon = LotStock(NDC, "SOON", TODAY + dt.timedelta(days=10), Decimal(5))
    later = LotStock(NDC, "LATER", TODAY + dt.timedelta(days=90), Decimal(50))
    latest = LotStock(NDC, "LATEST", TODAY + dt.timedelta(days=300), Decimal(50))
    gone = LotStock(NDC, "GONE", TODAY - dt.timedelta(days=1), Decimal(500))
    recalled = LotStock(NDC, "BAD", TODAY + dt.timedelta(days=1), Decimal(500), recalled=True)
    lots = [latest, gone, recalled, later, soon]
    assert first_to_expire(NDC, lots, Decimal(5), TODAY) == soon
    assert first_to_expire(NDC, lots, Decimal(30), TODAY) == later
    short = first_to_expire(NDC, lots, Decimal(60), TODAY)
    assert code(short) == "insufficient_stock"
    assert getattr(short, "words", "").endswith("the most one holds is 50.")
    assert code(first_to_expire(NDC, [gone, recalled], Decimal(1), TODAY)) == "insufficient_stock"
