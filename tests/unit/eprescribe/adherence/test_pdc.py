"""Proportion of days covered, PQA method: hand-computed cases (the arithmetic in comments) and
properties that hold for any fills."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprescribe.adherence.pdc import (
    THRESHOLD,
    Coverage,
    FillRecord,
    MeasurementPeriod,
    class_coverage,
    covered_days,
    percent,
    proportion_of_days_covered,
)

D = dt.date
YEAR_2026 = MeasurementPeriod(D(2026, 1, 1), D(2026, 12, 31))
STATINS = "statins"
RAS = "ras_antagonists"


def statin(filled_on: dt.date, days: int) -> FillRecord:
    return FillRecord(STATINS, "atorvastatin", filled_on, days)


def only(coverages: tuple[Coverage, ...]) -> Coverage:
    assert len(coverages) == 1
    return coverages[0]


def test_fills_back_to_back_cover_every_day() -> None:
    # period 1 Jan - 31 Mar 2026: 31 + 28 + 31 = 90 days
    # 1 Jan x30 covers 1-30 Jan; 31 Jan x30 covers 31 Jan - 1 Mar (1 + 28 + 1 = 30);
    # 2 Mar x30 covers 2-31 Mar: 30 + 30 + 30 = 90 covered of 90
    quarter = MeasurementPeriod(D(2026, 1, 1), D(2026, 3, 31))
    fills = [statin(D(2026, 1, 1), 30), statin(D(2026, 1, 31), 30), statin(D(2026, 3, 2), 30)]
    result = only(proportion_of_days_covered(fills, quarter))
    assert (result.drug_class, result.drug, result.index_date) == (STATINS, None, D(2026, 1, 1))
    assert (result.days_in_period, result.days_covered, result.pdc) == (90, 90, Fraction(1))
    assert result.eligible
    assert result.adherent
    assert percent(result.pdc) == Decimal("100.0")


def test_a_gap_lowers_the_pdc_below_the_threshold() -> None:
    # 1 Jan x90: 1 Jan - 31 Mar (31 + 28 + 31 = 90); nothing in April;
    # 1 May x90: 1 May - 29 Jul (31 + 30 + 29 = 90); nothing 30 Jul - 30 Sep;
    # 1 Oct x90: 1 Oct - 29 Dec (31 + 30 + 29 = 90)
    # covered 270 of 365 (index 1 Jan): 270/365 = 54/73 = 73.97 %
    fills = [statin(D(2026, 1, 1), 90), statin(D(2026, 5, 1), 90), statin(D(2026, 10, 1), 90)]
    result = only(proportion_of_days_covered(fills, YEAR_2026))
    assert (result.days_in_period, result.days_covered) == (365, 270)
    assert result.pdc == Fraction(54, 73)
    assert result.eligible
    assert not result.adherent
    assert percent(result.pdc) == Decimal("73.9")  # 73.972... rounded down


def test_an_early_refill_starts_the_day_after_the_earlier_supply_runs_out() -> None:
    # period 1 Jan - 30 Jun 2026: 31 + 28 + 31 + 30 + 31 + 30 = 181 days
    # 1 Jan x30: 1-30 Jan
    # 25 Jan x30 overlaps: shifted to 31 Jan - 1 Mar
    # 20 Feb x30 overlaps: shifted to 2-31 Mar
    # covered 1 Jan - 31 Mar = 90 days (without the shift only 1 Jan - 21 Mar = 80)
    period = MeasurementPeriod(D(2026, 1, 1), D(2026, 6, 30))
    fills = [statin(D(2026, 1, 1), 30), statin(D(2026, 1, 25), 30), statin(D(2026, 2, 20), 30)]
    result = only(proportion_of_days_covered(fills, period))
    assert (result.days_in_period, result.days_covered) == (181, 90)
    assert result.pdc == Fraction(90, 181)
    days = covered_days(fills, period)
    assert min(days) == D(2026, 1, 1)
    assert max(days) == D(2026, 3, 31)


def test_supply_past_the_end_of_the_period_is_not_counted() -> None:
    # index 1 Nov: 30 (Nov) + 31 (Dec) = 61 days in the period
    # 1 Nov x30: 1-30 Nov; 1 Dec x90: 1-31 Dec counted (31), 59 days in 2027 dropped;
    # 15 Dec x30 is shifted behind the 90 days (to 1 Mar 2027): nothing in the period
    fills = [statin(D(2026, 11, 1), 30), statin(D(2026, 12, 1), 90), statin(D(2026, 12, 15), 30)]
    result = only(proportion_of_days_covered(fills, YEAR_2026))
    assert (result.index_date, result.days_in_period, result.days_covered) == (
        D(2026, 11, 1),
        61,
        61,
    )
    assert (result.pdc, result.fill_dates) == (Fraction(1), 3)
    assert max(covered_days(fills, YEAR_2026)) == D(2026, 12, 31)


def test_one_fill_only_is_not_counted_by_the_measure() -> None:
    # 1 Jan x90: 90 of 365 days = 18/73, but one fill date: not eligible
    result = only(proportion_of_days_covered([statin(D(2026, 1, 1), 90)], YEAR_2026))
    assert (result.days_covered, result.pdc, result.fill_dates) == (90, Fraction(18, 73), 1)
    assert not result.eligible


def test_two_fills_on_one_date_are_one_fill_the_longest() -> None:
    # both on 1 Jan, 30 and 45 days: one fill of 45 days (1 Jan - 14 Feb), not 75; one date
    # only: not eligible
    fills = [statin(D(2026, 1, 1), 30), statin(D(2026, 1, 1), 45)]
    result = only(proportion_of_days_covered(fills, YEAR_2026))
    assert (result.days_covered, result.fill_dates, result.eligible) == (45, 1, False)


def test_fills_outside_the_period_are_not_read() -> None:
    # 15 Dec 2025 x90 would reach into 2026, and 2 Jan 2027 is after: neither counts, so the
    # one fill of 1 Mar 2026 is alone (index 1 Mar: 365 - 31 - 28 = 306 days, 30 covered)
    fills = [statin(D(2025, 12, 15), 90), statin(D(2026, 3, 1), 30), statin(D(2027, 1, 2), 30)]
    result = only(proportion_of_days_covered(fills, YEAR_2026))
    assert (result.index_date, result.days_in_period, result.days_covered) == (
        D(2026, 3, 1),
        306,
        30,
    )
    assert not result.eligible


def test_a_switch_within_a_class_counts_the_union_of_its_drugs() -> None:
    # period 1 Jan - 30 Apr 2026: 31 + 28 + 31 + 30 = 120 days
    # lisinopril 1 Jan x30: 1-30 Jan; 31 Jan x30: 31 Jan - 1 Mar (60 days in all)
    # switched to losartan 20 Feb x30: 20 Feb - 21 Mar (not shifted behind lisinopril);
    #   22 Mar x30: 22 Mar - 20 Apr (60 days in all)
    # class: 1 Jan - 20 Apr = 31 + 28 + 31 + 20 = 110 of 120 = 11/12 (91.6 %)
    # lisinopril alone: 60 of 120 (index 1 Jan) = 1/2
    # losartan alone: index 20 Feb: 9 (20-28 Feb) + 31 + 30 = 70 days, 9 + 31 + 20 = 60 covered
    period = MeasurementPeriod(D(2026, 1, 1), D(2026, 4, 30))
    fills = [
        FillRecord(RAS, "lisinopril", D(2026, 1, 1), 30, Decimal(30)),
        FillRecord(RAS, "lisinopril", D(2026, 1, 31), 30, Decimal(30)),
        FillRecord(RAS, "losartan", D(2026, 2, 20), 30, Decimal(30)),
        FillRecord(RAS, "losartan", D(2026, 3, 22), 30, Decimal(30)),
        statin(D(2026, 4, 1), 30),  # another class: its own line, not in the union
    ]
    ras, statins = proportion_of_days_covered(fills, period)
    assert (ras.drug_class, statins.drug_class) == (RAS, STATINS)
    assert (ras.days_in_period, ras.days_covered, ras.pdc) == (120, 110, Fraction(11, 12))
    assert ras.fill_dates == 4
    assert ras.eligible
    assert ras.adherent
    assert percent(ras.pdc) == Decimal("91.6")
    lisinopril, losartan = ras.drugs
    assert (lisinopril.drug, lisinopril.index_date) == ("lisinopril", D(2026, 1, 1))
    assert (lisinopril.days_in_period, lisinopril.days_covered) == (120, 60)
    assert lisinopril.pdc == Fraction(1, 2)
    assert (losartan.drug, losartan.index_date) == ("losartan", D(2026, 2, 20))
    assert (losartan.days_in_period, losartan.days_covered) == (70, 60)
    assert losartan.pdc == Fraction(6, 7)
    assert losartan.eligible
    assert class_coverage(RAS, fills, period) == ras
    assert class_coverage("diabetes", fills, period) is None


def test_a_leap_year_has_366_days_and_29_february_is_covered() -> None:
    # period 2024: 366 days; index 1 Feb: 366 - 31 = 335 days
    # 1 Feb x30: 1-29 Feb (29 days) + 1 Mar (in 2026 it would run to 2 Mar)
    # 29 Feb x30 overlaps: shifted to 2-31 Mar (30 days)
    # covered 29 + 31 = 60 of 335 = 12/67
    leap = MeasurementPeriod(D(2024, 1, 1), D(2024, 12, 31))
    fills = [statin(D(2024, 2, 1), 30), statin(D(2024, 2, 29), 30)]
    result = only(proportion_of_days_covered(fills, leap))
    assert (result.days_in_period, result.days_covered) == (335, 60)
    assert result.pdc == Fraction(12, 67)
    days = covered_days(fills, leap)
    assert D(2024, 2, 29) in days
    assert max(days) == D(2024, 3, 31)
    assert leap.days_from(leap.start) == 366


def test_the_threshold_is_exact() -> None:
    assert Fraction(4, 5) == THRESHOLD
    # 292/365 = 0.8: adherent; 291/365 = 0.797...: not, and shown as 79.7, not 80
    assert Coverage(STATINS, None, D(2026, 1, 1), 365, 292, 2, Fraction(292, 365)).adherent
    below = Coverage(STATINS, None, D(2026, 1, 1), 365, 291, 2, Fraction(291, 365))
    assert not below.adherent
    assert percent(below.pdc) == Decimal("79.7")
    assert percent(Fraction(7999, 10000), places=2) == Decimal("79.99")


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot end before"):
        MeasurementPeriod(D(2026, 2, 1), D(2026, 1, 31))
    with pytest.raises(ValueError, match="days supply"):
        statin(D(2026, 1, 1), 0)
    with pytest.raises(ValueError, match="drug class"):
        FillRecord("", "atorvastatin", D(2026, 1, 1), 30)
    with pytest.raises(ValueError, match="quantity"):
        FillRecord(STATINS, "atorvastatin", D(2026, 1, 1), 30, Decimal(0))


fill_records = st.builds(
    FillRecord,
    drug_class=st.sampled_from([STATINS, RAS]),
    drug=st.sampled_from(["a", "b", "c"]),
    filled_on=st.dates(D(2025, 11, 1), D(2027, 2, 1)),
    days_supply=st.integers(1, 120),
)


@given(st.lists(fill_records, max_size=12))
def test_pdc_is_a_proportion_of_the_days_from_the_index_date(fills: list[FillRecord]) -> None:
    for result in proportion_of_days_covered(fills, YEAR_2026):
        assert 0 < result.pdc <= 1
        assert result.days_covered <= result.days_in_period
        assert result.adherent == (result.pdc >= THRESHOLD)
        drug_days = [drug.days_covered for drug in result.drugs]
        # the class's union: at least its best drug, at most all of them together
        assert max(drug_days) <= result.days_covered <= sum(drug_days)
        for drug in result.drugs:
            assert 0 < drug.pdc <= 1
            assert drug.index_date >= result.index_date
            mine = [fill for fill in fills if fill.drug == drug.drug]
            days = covered_days([f for f in mine if f.drug_class == result.drug_class], YEAR_2026)
            assert all(drug.index_date <= day <= YEAR_2026.end for day in days)
            supplied = sum(f.days_supply for f in mine if f.filled_on in YEAR_2026)
            assert len(days) <= supplied
