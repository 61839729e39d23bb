"""Medication synchronisation: a patient's chronic medications brought to one refill day, so
that one visit (or one delivery) collects them all.

The pharmacy picks an **anchor**, and the sync days are the anchor and every ``cycle_days``
before and after it (by default the shortest days supply of the medications). Each medication,
when its current supply runs out, gets one **short fill**: the days to the next sync day
(prorated days supply, quantity = daily quantity * days, never negative, none for a medication
whose supply already runs out on a sync day); from then on it is filled on sync days. A
medication stays aligned when its days supply is a whole number of cycles (a 90-day fill on a
30-day cycle); one that is not (28-day packs on a 30-day cycle) drifts again, which
:attr:`ShortFill.stays_aligned` says.

Without an anchor, :func:`best_anchor` picks the one that minimises the short fills: the
fewest short-fill days in all, then the fewest short fills, then the earliest day. Only the days
the medications run out are candidates: moving the anchor by a day away from them adds a day to
every short fill but the one that wraps round, so the fewest days are always at one of them.
Quantities are exact :class:`~decimal.Decimal`; rounding a prorated quantity to what can be
dispensed (whole tablets, whole packages) is the pharmacist's call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "ChronicMed",
    "ShortFill",
    "SyncPlan",
    "best_anchor",
    "next_sync_day",
    "short_fill",
    "sync_plan",
]


@dataclass(frozen=True, slots=True)
class ChronicMed:
    """A chronic medication: the caller's key for it, its last fill and the quantity the
    patient takes a day (from the directions, or the fill's quantity over its days supply)."""

    key: str
    last_filled: dt.date
    days_supply: int
    daily_quantity: Decimal

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a medication needs its key")
        if self.days_supply < 1:
            raise ValueError("days supply must be at least 1")
        if not self.daily_quantity > 0:
            raise ValueError("the daily quantity must be above 0")

    @property
    def runs_out_on(self) -> dt.date:
        """The first day the last fill does not cover."""
        return self.last_filled + dt.timedelta(days=self.days_supply)


@dataclass(frozen=True, slots=True)
class ShortFill:
    """What one medication needs to reach the sync day: a fill of ``days_supply`` days and
    ``quantity`` on ``starts_on`` (none when ``days_supply`` is 0), then regular fills from
    ``sync_on``."""

    med: str
    starts_on: dt.date
    days_supply: int
    quantity: Decimal
    sync_on: dt.date
    #: its regular days supply is whole cycles, so it stays on the sync days
    stays_aligned: bool

    @property
    def needed(self) -> bool:
        return self.days_supply > 0


@dataclass(frozen=True, slots=True)
class SyncPlan:
    anchor: dt.date
    cycle_days: int
    fills: tuple[ShortFill, ...]

    @property
    def short_days(self) -> int:
        """The days of all short fills together."""
        return sum(fill.days_supply for fill in self.fills)


def next_sync_day(anchor: dt.date, cycle_days: int, day: dt.date) -> dt.date:
    """The first sync day (``anchor`` plus or minus whole cycles) on or after ``day``."""
    return day + dt.timedelta(days=(anchor - day).days % cycle_days)


def short_fill(med: ChronicMed, anchor: dt.date, cycle_days: int) -> ShortFill:
    """The short fill that brings ``med`` from the day its supply runs out to the next sync
    day."""
    starts_on = med.runs_out_on
    sync_on = next_sync_day(anchor, cycle_days, starts_on)
    days = (sync_on - starts_on).days
    return ShortFill(
        med=med.key,
        starts_on=starts_on,
        days_supply=days,
        quantity=med.daily_quantity * days,
        sync_on=sync_on,
        stays_aligned=med.days_supply % cycle_days == 0,
    )


def best_anchor(meds: Iterable[ChronicMed], cycle_days: int) -> dt.date:
    """The anchor with the fewest short-fill days, then the fewest short fills, then the
    earliest: one of the days the medications run out (the module docstring says why)."""
    listed = list(meds)
    if not listed:
        raise ValueError("no medication to synchronise")

    def cost(anchor: dt.date) -> tuple[int, int, dt.date]:
        fills = [short_fill(med, anchor, cycle_days) for med in listed]
        return sum(f.days_supply for f in fills), sum(f.needed for f in fills), anchor

    return min((med.runs_out_on for med in listed), key=cost)


def sync_plan(
    meds: Sequence[ChronicMed], anchor: dt.date | None = None, cycle_days: int | None = None
) -> SyncPlan:
    """The short fill of each medication (in the order given) for ``anchor``, or for the
    :func:`best_anchor` when none is given. ``cycle_days`` defaults to the shortest days supply
    of the medications (30 for a mix of 30- and 90-day fills)."""
    if not meds:
        raise ValueError("no medication to synchronise")
    cycle = min(med.days_supply for med in meds) if cycle_days is None else cycle_days
    if cycle < 1:
        raise ValueError("a sync cycle is at least one day")
    chosen = best_anchor(meds, cycle) if anchor is None else anchor
    return SyncPlan(chosen, cycle, tuple(short_fill(med, chosen, cycle) for med in meds))
