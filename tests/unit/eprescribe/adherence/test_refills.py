"""When the supply runs out and the reminder is due: a refill while refills remain, a renewal
when none do."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from eprescribe.adherence.refills import (
    REMINDER_LEAD_DAYS,
    Dispensed,
    RefillDue,
    RenewalDue,
    refill_due,
    runs_out_on,
)

D = dt.date


def test_a_refill_is_due_a_week_before_the_supply_runs_out() -> None:
    # 1 Mar x30 covers 1-30 Mar: runs out 31 Mar; 31 Mar - 7 days = 24 Mar
    due = refill_due([Dispensed(D(2026, 3, 1), 30, Decimal(30))], refills_remaining=2)
    assert REMINDER_LEAD_DAYS == 7
    assert due == RefillDue(D(2026, 3, 31), D(2026, 3, 24), 2, Decimal(30))


def test_an_early_refill_adds_its_supply_after_the_earlier_one() -> None:
    # 1 Mar x30: 1-30 Mar; 25 Mar x30 starts 31 Mar: 31 Mar - 29 Apr; runs out 30 Apr
    # the reminder 3 days before: 27 Apr; the last fill dispensed 60
    fills = [Dispensed(D(2026, 3, 25), 30, Decimal(60)), Dispensed(D(2026, 3, 1), 30, Decimal(30))]
    assert runs_out_on(fills) == D(2026, 4, 30)
    due = refill_due(fills, refills_remaining=1, lead_days=3)
    assert due == RefillDue(D(2026, 4, 30), D(2026, 4, 27), 1, Decimal(60))


def test_with_no_refill_left_a_renewal_is_due() -> None:
    # same supply as above, no refill left: the renewal, reminded 7 days before (23 Apr)
    fills = [Dispensed(D(2026, 3, 1), 30), Dispensed(D(2026, 3, 25), 30)]
    due = refill_due(fills, refills_remaining=0)
    assert isinstance(due, RenewalDue)
    assert due == RenewalDue(D(2026, 4, 30), D(2026, 4, 23))


def test_the_reminder_is_never_before_the_fill_it_follows() -> None:
    # 1 Mar x5 runs out 6 Mar; 7 days before would be 27 Feb: due on the fill's own day
    due = refill_due([Dispensed(D(2026, 3, 1), 5)], refills_remaining=1)
    assert (due.runs_out_on, due.remind_on) == (D(2026, 3, 6), D(2026, 3, 1))
    # no lead: due the day it runs out
    assert refill_due([Dispensed(D(2026, 3, 1), 5)], 1, lead_days=0).remind_on == D(2026, 3, 6)


def test_a_leap_day_is_a_day_of_supply() -> None:
    # 1 Feb 2024 x30: 1-29 Feb (29) + 1 Mar: runs out 2 Mar
    assert runs_out_on([Dispensed(D(2024, 2, 1), 30)]) == D(2024, 3, 2)


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="never filled"):
        refill_due([], refills_remaining=1)
    with pytest.raises(ValueError, match="negative"):
        refill_due([Dispensed(D(2026, 3, 1), 30)], refills_remaining=-1)
    with pytest.raises(ValueError, match="after the supply"):
        refill_due([Dispensed(D(2026, 3, 1), 30)], 1, lead_days=-1)
    with pytest.raises(ValueError, match="days supply"):
        Dispensed(D(2026, 3, 1), 0)
