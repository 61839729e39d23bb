"""Quantity, days supply and directions must tell the same story."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from eprescribe.ncpdp import MedicationPrescribed

from .base import Check, CheckContext, Finding, Severity
from .sigtext import DailyUse, as_needed, daily_use

#: disagreement below this is rounding (a 28-day pack written as 30 days, say)
TOLERANCE_DAYS = Decimal(2)
TOLERANCE_SHARE = Decimal("0.10")


def days_supply(context: CheckContext) -> Iterator[Finding]:
    medication = context.newrx.medication
    written_days = medication.days_supply
    use = daily(medication)
    if not written_days or use is None or use.unit_code != medication.quantity.unit_code:
        return
    expected = medication.quantity.value / use.quantity
    if abs(expected - written_days) > max(TOLERANCE_DAYS, TOLERANCE_SHARE * written_days):
        yield Finding(
            "QUANTITY_DAYS_SUPPLY_MISMATCH",
            Severity.WARNING,
            f"{_plain(medication.quantity.value)} units at {_plain(use.quantity)} a day last "
            f"{_plain(expected)} days, but the days supply says {written_days}.",
            {
                "quantity": str(medication.quantity.value),
                "per_day": str(use.quantity),
                "days_supply": written_days,
                "expected_days": str(round(expected, 1)),
            },
        )


def daily(medication: MedicationPrescribed) -> DailyUse | None:
    """Units per day from the structured Sig when it says, else from the free text; none
    for directions taken as needed (in the structure, or only in the text: "PRN")."""
    sig = medication.sig
    steps = sig.instructions
    if as_needed(sig.text):
        return None
    if steps and not sig.as_needed and not any(step.as_needed for step in steps):
        amounts = [step.quantity_per_day() for step in steps]
        units = {step.dose_unit.code if step.dose_unit else None for step in steps}
        if None not in amounts and len(units) == 1 and None not in units:
            total = sum((a for a in amounts if a is not None), Decimal(0))
            return DailyUse(total, units.pop() or "")
    return daily_use(sig.text)


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:.1f}"


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (days_supply,)
