from decimal import Decimal

import pytest

from eprescribe.checks.sigtext import daily_use

from .helpers import codes, context, finding


@pytest.mark.parametrize(
    ("sig", "per_day", "unit"),
    [
        ("Take 1 tablet by mouth twice daily", "2", "C48542"),
        ("take one tablet by mouth once daily", "1", "C48542"),
        ("Take 2 capsules by mouth three times a day", "6", "C48480"),
        ("Take 1 tab PO BID", "2", "C48542"),
        ("Take 1 tablet every 6 hours", "4", "C48542"),
        ("Take 1 tablet at bedtime", "1", "C48542"),
        ("Take half tablet daily", "0.5", "C48542"),
    ],
)
def test_sig_text_daily_use(sig: str, per_day: str, unit: str) -> None:
    use = daily_use(sig)
    assert use is not None
    assert (use.quantity, use.unit_code) == (Decimal(per_day), unit)


@pytest.mark.parametrize(
    "sig",
    [
        "Take 1 tablet by mouth every 6 hours as needed for pain",
        "Take 2 tablets on day 1 then 1 tablet daily",
        "Apply to affected area",
        "Take 1 tablet every 5 hours",
        "Use as directed",
    ],
)
def test_unrecognised_or_variable_sigs_give_nothing(sig: str) -> None:
    assert daily_use(sig) is None


def test_consistent_quantity_days_and_sig() -> None:
    assert "QUANTITY_DAYS_SUPPLY_MISMATCH" not in codes(context(quantity="60", days_supply="30"))


def test_mismatch_from_free_text() -> None:
    found = finding(context(quantity="60", days_supply="90"), "QUANTITY_DAYS_SUPPLY_MISMATCH")
    assert found.evidence["expected_days"] == "30.0"


def test_small_rounding_is_tolerated() -> None:
    assert "QUANTITY_DAYS_SUPPLY_MISMATCH" not in codes(context(quantity="56", days_supply="30"))


def test_mismatch_from_structured_sig() -> None:
    ctx = context(structured_sig=True, quantity="60", days_supply="10")
    assert "QUANTITY_DAYS_SUPPLY_MISMATCH" in codes(ctx)
    assert "QUANTITY_DAYS_SUPPLY_MISMATCH" not in codes(
        context(structured_sig=True, quantity="60", days_supply="30")
    )


@pytest.mark.parametrize("words", ["as needed for pain", "PRN pain", "prn"])
def test_a_structured_sig_whose_text_says_as_needed_gives_no_daily_use(words: str) -> None:
    sig = f"Take 1 tablet by mouth twice daily {words}"
    ctx = context(structured_sig=True, sig_text=sig, quantity="60", days_supply="10")
    assert "QUANTITY_DAYS_SUPPLY_MISMATCH" not in codes(ctx)


def test_different_units_are_not_compared() -> None:
    ctx = context(quantity="60", days_supply="90", quantity_unit="C28254")  # mL vs tablets
    assert "QUANTITY_DAYS_SUPPLY_MISMATCH" not in codes(ctx)
