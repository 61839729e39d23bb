"""When a prescription's supply runs out, and what the patient is reminded of before it does:
a refill while the prescription has refills left, otherwise a renewal (a new prescription
asked of the prescriber, since no refill can be dispensed).

The supply is counted as PDC counts it (``pdc.py``): the fills in date order, each starting on
its date or, when earlier supply still lasts then, the day after that supply runs out. The lead
time of the reminder is the pharmacy's choice (:data:`REMINDER_LEAD_DAYS` by default); a
reminder is never due before the fill it follows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

#: remind this many days before the supply runs out, unless the pharmacy says otherwise
REMINDER_LEAD_DAYS = 7

__all__ = [
    "REMINDER_LEAD_DAYS",
    "Dispensed",
    "RefillDue",
    "RenewalDue",
    "refill_due",
    "runs_out_on",
]


@dataclass(frozen=True, slots=True)
class Dispensed:
    """One fill of the prescription: when, for how many days, and how much (when known)."""

    filled_on: dt.date
    days_supply: int
    quantity: Decimal | None = None

    def __post_init__(self) -> None:
        if self.days_supply < 1:
            raise ValueError("days supply must be at least 1")
        if self.quantity is not None and not self.quantity > 0:
            raise ValueError("quantity must be above 0")


@dataclass(frozen=True, slots=True)
class RefillDue:
    """Refills remain: remind the patient to ask for the next one."""

    #: the first day without supply
    runs_out_on: dt.date
    remind_on: dt.date
    refills_remaining: int
    #: what the last fill dispensed, which a refill repeats (None: not known)
    quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class RenewalDue:
    """No refill remains: a renewal request to the prescriber is what applies."""

    #: the first day without supply
    runs_out_on: dt.date
    remind_on: dt.date


def runs_out_on(fills: Iterable[Dispensed]) -> dt.date:
    """The first day no fill's supply covers, overlapping fills shifted forward (a fill of 30
    days on 1 March covers 1 to 30 March: the supply runs out on 31 March)."""
    ordered = sorted(fills, key=lambda fill: fill.filled_on)
    if not ordered:
        raise ValueError("a prescription never filled has no supply to run out")
    free = ordered[0].filled_on
    for fill in ordered:
        free = max(fill.filled_on, free) + dt.timedelta(days=fill.days_supply)
    return free


def refill_due(
    fills: Iterable[Dispensed], refills_remaining: int, lead_days: int = REMINDER_LEAD_DAYS
) -> RefillDue | RenewalDue:
    """When the supply of a prescription with these ``fills`` runs out and when to remind the
    patient, ``lead_days`` before (but not before the last fill): a refill while
    ``refills_remaining`` is above 0, otherwise a renewal."""
    if refills_remaining < 0:
        raise ValueError("refills remaining cannot be negative")
    if lead_days < 0:
        raise ValueError("a reminder cannot be due after the supply runs out")
    listed = sorted(fills, key=lambda fill: fill.filled_on)
    runs_out = runs_out_on(listed)
    remind_on = max(runs_out - dt.timedelta(days=lead_days), listed[-1].filled_on)
    if refills_remaining == 0:
        return RenewalDue(runs_out, remind_on)
    return RefillDue(runs_out, remind_on, refills_remaining, listed[-1].quantity)
