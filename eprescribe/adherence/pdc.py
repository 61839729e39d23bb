"""Proportion of days covered (PDC), the Pharmacy Quality Alliance's adherence measure, as the
hub's reference states it (dispensing-patients-payments.md, "Adherence: proportion of days
covered (PQA)"):

- the period counted runs from the **index date**, the first fill of the drug class in the
  measurement period, to the end of the measurement period (both days included);
- the numerator is the days of that period covered by days supply, the denominator the days of
  that period; PDC = covered / days;
- a patient is counted (``eligible``) only with at least two fills of the class on different
  dates in the measurement period;
- when fills overlap, the later fill's start is shifted to the day after the earlier supply
  ends; supply past the end of the measurement period is not counted;
- adherent at PDC ≥ 80 %;
- per drug class (RAS antagonists, statins, diabetes medications), not per product.

Where the reference is silent, these rules are ours:

- fills are shifted forward only behind earlier fills of the **same drug**; when the patient
  switches between drugs of one class, the class's covered days are the union of its drugs'
  covered days (a day two drugs both cover counts once, and a switch does not push the new drug
  behind what is left of the old one);
- fills dated outside the measurement period are not read at all: they neither make the
  patient eligible nor carry supply into the period;
- fills of the same drug on the same day count as one, the one with the longest days supply
  (as CMS's Part D adherence measures read the PQA method: a claim billed again is not twice
  the supply);
- each drug's own line (:attr:`Coverage.drugs`) applies the same rules to that drug alone: its
  own index date, its own two fill dates;
- further exclusions a payer's programme applies are the caller's to apply before or after.

The ratio is an exact :class:`~fractions.Fraction`, so the 80 % threshold is decided without
rounding; :func:`percent` gives it for display, rounded down so that a ratio below the threshold
never shows as 80.0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

#: adherent at or above this proportion of days covered
THRESHOLD = Fraction(4, 5)
#: fills of a class on at least this many different dates make a patient eligible
MIN_FILL_DATES = 2

__all__ = [
    "MIN_FILL_DATES",
    "THRESHOLD",
    "Coverage",
    "FillRecord",
    "MeasurementPeriod",
    "class_coverage",
    "covered_days",
    "percent",
    "proportion_of_days_covered",
]

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MeasurementPeriod:
    """The measurement period, ``start`` and ``end`` both included (a calendar year is
    ``MeasurementPeriod(date(2026, 1, 1), date(2026, 12, 31))``)."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a measurement period cannot end before it starts")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end

    def days_from(self, day: dt.date) -> int:
        """The days from ``day`` to the end of the period, both included."""
        return (self.end - day).days + 1


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill as adherence sees it: which drug of which class, the day it was dispensed, and
    the days its supply lasts. ``drug`` and ``drug_class`` are the caller's keys (an RxNorm
    ingredient, a PQA value-set name); the quantity is carried, not used by PDC."""

    drug_class: str
    drug: str
    filled_on: dt.date
    days_supply: int
    quantity: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.drug_class or not self.drug:
            raise ValueError("a fill needs its drug and its drug class")
        if self.days_supply < 1:
            raise ValueError("days supply must be at least 1")
        if self.quantity is not None and not self.quantity > 0:
            raise ValueError("quantity must be above 0")


@dataclass(frozen=True, slots=True)
class Coverage:
    """PDC of one drug class (``drug`` None, with its drugs' own lines in ``drugs``) or of one
    drug of it."""

    drug_class: str
    drug: str | None
    #: the first fill in the measurement period
    index_date: dt.date
    #: the denominator: days from the index date to the end of the period, both included
    days_in_period: int
    #: the numerator: days of that period covered by supply, overlaps shifted forward
    days_covered: int
    #: the different dates of the fills in the period
    fill_dates: int
    pdc: Fraction
    drugs: tuple[Coverage, ...] = field(default=())

    @property
    def eligible(self) -> bool:
        """Counted by the measure: fills on at least two different dates in the period."""
        return self.fill_dates >= MIN_FILL_DATES

    @property
    def adherent(self) -> bool:
        """PDC at or above the 80 % threshold (whether or not the patient is counted)."""
        return self.pdc >= THRESHOLD


def covered_days(fills: Iterable[FillRecord], period: MeasurementPeriod) -> frozenset[dt.date]:
    """The days of ``period`` the fills of **one drug** cover: in date order (of fills on one
    day, the longest), each fill starts on its date or, when earlier supply still lasts then,
    on the day after that supply runs out; days past the end of the period are dropped."""
    longest: dict[dt.date, FillRecord] = {}
    for fill in _in_period(fills, period):
        kept = longest.get(fill.filled_on)
        if kept is None or fill.days_supply > kept.days_supply:
            longest[fill.filled_on] = fill
    days: set[dt.date] = set()
    free = period.start  # the first day no earlier supply covers
    for fill in sorted(longest.values(), key=lambda fill: fill.filled_on):
        start = max(fill.filled_on, free)
        free = start + fill.days_supply * _DAY
        days.update(_dates(start, min(free, period.end + _DAY)))
    return frozenset(days)


def class_coverage(
    drug_class: str, fills: Iterable[FillRecord], period: MeasurementPeriod
) -> Coverage | None:
    """PDC of ``drug_class`` from the patient's fills (fills of other classes are ignored), with
    a line per drug; None when no fill of the class falls in the period (no index date)."""
    mine = [fill for fill in _in_period(fills, period) if fill.drug_class == drug_class]
    if not mine:
        return None
    by_drug = {drug: [fill for fill in mine if fill.drug == drug] for drug in _keys(mine)}
    covered = {drug: covered_days(group, period) for drug, group in by_drug.items()}
    drugs = tuple(
        _coverage(drug_class, drug, group, period, covered[drug]) for drug, group in by_drug.items()
    )
    union = frozenset[dt.date]().union(*covered.values())
    return _coverage(drug_class, None, mine, period, union, drugs)


def proportion_of_days_covered(
    fills: Iterable[FillRecord], period: MeasurementPeriod
) -> tuple[Coverage, ...]:
    """PDC of every drug class with a fill in ``period``, ordered by class."""
    listed = list(_in_period(fills, period))
    classes = sorted({fill.drug_class for fill in listed})
    found = (class_coverage(drug_class, listed, period) for drug_class in classes)
    return tuple(coverage for coverage in found if coverage is not None)


def percent(pdc: Fraction, places: int = 1) -> Decimal:
    """``pdc`` as a percentage with ``places`` decimals, rounded down (79.96 % shows as 79.9,
    never as an adherent-looking 80.0)."""
    exact = Decimal(pdc.numerator * 100) / Decimal(pdc.denominator)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def _coverage(
    drug_class: str,
    drug: str | None,
    fills: list[FillRecord],
    period: MeasurementPeriod,
    covered: frozenset[dt.date],
    drugs: tuple[Coverage, ...] = (),
) -> Coverage:
    index_date = min(fill.filled_on for fill in fills)
    days = period.days_from(index_date)
    return Coverage(
        drug_class=drug_class,
        drug=drug,
        index_date=index_date,
        days_in_period=days,
        days_covered=len(covered),
        fill_dates=len({fill.filled_on for fill in fills}),
        pdc=Fraction(len(covered), days),
        drugs=drugs,
    )


def _keys(fills: list[FillRecord]) -> list[str]:
    return sorted({fill.drug for fill in fills})


def _in_period(fills: Iterable[FillRecord], period: MeasurementPeriod) -> Iterator[FillRecord]:
    return (fill for fill in fills if fill.filled_on in period)


def _dates(start: dt.date, stop: dt.date) -> Iterator[dt.date]:
    """The days from ``start`` up to ``stop`` (not included)."""
    return (start + offset * _DAY for offset in range((stop - start).days))
