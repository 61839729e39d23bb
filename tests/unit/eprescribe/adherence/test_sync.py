"""Medication synchronisation: the anchor and each medication's short fill."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprescribe.adherence.sync import (
    ChronicMed,
    ShortFill,
    best_anchor,
    next_sync_day,
    sync_plan,
)

D = dt.date

# three medications on different cycles, 2026 (February has 28 days):
# amlodipine 1 Jan x30, 1 a day: runs out 31 Jan
# metformin 10 Jan x30, 2 a day: runs out 9 Feb
# atorvastatin 20 Dec 2025 x90, 1 a day: 20-31 Dec (12) + 31 + 28 + 1-19 Mar (19) = 90,
#   so 20 Dec - 19 Mar covered: runs out 20 Mar
AMLODIPINE = ChronicMed("amlodipine", D(2026, 1, 1), 30, Decimal(1))
METFORMIN = ChronicMed("metformin", D(2026, 1, 10), 30, Decimal(2))
ATORVASTATIN = ChronicMed("atorvastatin", D(2025, 12, 20), 90, Decimal(1))
MEDS = (AMLODIPINE, METFORMIN, ATORVASTATIN)


def test_the_days_each_medication_runs_out() -> None:
    assert [med.runs_out_on for med in MEDS] == [D(2026, 1, 31), D(2026, 2, 9), D(2026, 3, 20)]


def test_the_anchor_minimising_short_fills_is_chosen() -> None:
    # cycle 30 (the shortest days supply). Candidates are the days they run out; short days
    # = (anchor - runs out) mod 30:
    # 31 Jan: amlodipine 0, metformin (31 Jan - 9 Feb = -9) mod 30 = 21,
    #         atorvastatin (31 Jan - 20 Mar = -48) mod 30 = 12: 33 days
    # 9 Feb:  amlodipine 9, metformin 0, atorvastatin (-39) mod 30 = 21: 30 days
    # 20 Mar: amlodipine 48 mod 30 = 18, metformin 39 mod 30 = 9, atorvastatin 0: 27 days
    plan = sync_plan(MEDS)
    assert (plan.anchor, plan.cycle_days, plan.short_days) == (D(2026, 3, 20), 30, 27)
    assert best_anchor(MEDS, 30) == D(2026, 3, 20)
    # amlodipine: 18 days from 31 Jan, then on 18 Feb (20 Mar - 30 days); 18 x 1 = 18
    # metformin: 9 days from 9 Feb, then on 18 Feb; 9 x 2 = 18
    # atorvastatin: already on the anchor, no short fill
    assert plan.fills == (
        ShortFill("amlodipine", D(2026, 1, 31), 18, Decimal(18), D(2026, 2, 18), True),
        ShortFill("metformin", D(2026, 2, 9), 9, Decimal(18), D(2026, 2, 18), True),
        ShortFill("atorvastatin", D(2026, 3, 20), 0, Decimal(0), D(2026, 3, 20), True),
    )
    assert [fill.needed for fill in plan.fills] == [True, True, False]


def test_a_given_anchor_is_kept() -> None:
    # anchor 1 Feb, cycle 30: sync days 1 Feb, 3 Mar, 2 Apr
    # amlodipine out 31 Jan: 1 day, 1 tablet, synced 1 Feb
    # metformin out 9 Feb: (1 Feb - 9 Feb = -8) mod 30 = 22 days, 44 tablets, synced 3 Mar
    # atorvastatin out 20 Mar: (-47) mod 30 = 13 days, 13 tablets, synced 2 Apr
    plan = sync_plan(MEDS, anchor=D(2026, 2, 1))
    assert plan.anchor == D(2026, 2, 1)
    assert [(f.days_supply, f.quantity, f.sync_on) for f in plan.fills] == [
        (1, Decimal(1), D(2026, 2, 1)),
        (22, Decimal(44), D(2026, 3, 3)),
        (13, Decimal(13), D(2026, 4, 2)),
    ]
    assert plan.short_days == 36


def test_a_supply_that_is_not_whole_cycles_drifts() -> None:
    # 28-day packs on a 30-day cycle; half a tablet a day prorates to halves
    packs = ChronicMed("levothyroxine", D(2026, 1, 5), 28, Decimal("0.5"))  # out 2 Feb
    plan = sync_plan([AMLODIPINE, packs], anchor=D(2026, 1, 31), cycle_days=30)
    # 31 Jan - 2 Feb = -2, mod 30 = 28 days: 14 tablets, synced 2 Mar (31 Jan + 30)
    assert plan.fills[1] == ShortFill(
        "levothyroxine", D(2026, 2, 2), 28, Decimal("14.0"), D(2026, 3, 2), False
    )


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no medication"):
        sync_plan([])
    with pytest.raises(ValueError, match="cycle"):
        sync_plan(MEDS, cycle_days=0)
    with pytest.raises(ValueError, match="daily quantity"):
        ChronicMed("x", D(2026, 1, 1), 30, Decimal(0))


meds = st.builds(
    ChronicMed,
    key=st.just("m"),
    last_filled=st.dates(D(2025, 10, 1), D(2026, 3, 1)),
    days_supply=st.sampled_from([7, 28, 30, 60, 90]),
    daily_quantity=st.decimals("0.5", "4", places=1),
)


@given(st.lists(meds, min_size=1, max_size=5), st.integers(1, 90), st.none() | st.dates())
def test_short_fills_reach_a_sync_day_and_are_never_negative(
    listed: list[ChronicMed], cycle: int, anchor: dt.date | None
) -> None:
    plan = sync_plan(listed, anchor=anchor, cycle_days=cycle)
    for med, fill in zip(listed, plan.fills, strict=True):
        assert 0 <= fill.days_supply < cycle
        assert fill.quantity == med.daily_quantity * fill.days_supply >= 0
        assert (fill.sync_on - plan.anchor).days % cycle == 0
        assert next_sync_day(plan.anchor, cycle, fill.sync_on) == fill.sync_on
    if anchor is None:
        others = (sync_plan(listed, med.runs_out_on, cycle).short_days for med in listed)
        assert plan.short_days <= min(others)
