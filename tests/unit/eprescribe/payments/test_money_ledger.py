"""Money and the ledger's arithmetic, against hand-computed cases."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprescribe.payments import (
    Entry,
    EntryKind,
    Money,
    MoneyRefused,
    ageing,
    balance,
    money,
    signed,
)

DAY = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def at(days_ago: int) -> dt.datetime:
    return DAY - dt.timedelta(days=days_ago)


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (12.5, "amount_not_integer"),
        ("1250", "amount_not_integer"),
        (True, "amount_not_integer"),
        (None, "amount_not_integer"),
        (-1, "amount_not_positive"),
        (0, "amount_not_positive"),
        (100_000_001, "amount_too_large"),
    ],
)
def test_amounts_refused(amount: object, code: str) -> None:
    with pytest.raises(MoneyRefused) as refused:
        money(amount, "usd")
    assert refused.value.code == code


def test_currency_refused_and_normalised() -> None:
    with pytest.raises(MoneyRefused) as refused:
        money(100, "XYZ")
    assert refused.value.code == "currency_unknown"
    assert money(100, "USD") == Money(100, "usd")
    assert money(0, "usd", allow_zero=True).amount == 0


def test_show() -> None:
    assert Money(1234, "usd").show() == "12.34 USD"
    assert Money(-5, "usd").show() == "-0.05 USD"
    assert Money(500, "jpy").show() == "500 JPY"


def test_adding_two_currencies_refused() -> None:
    with pytest.raises(MoneyRefused):
        Money(1, "usd") + Money(1, "eur")


def test_balance_by_sign() -> None:
    entries = [
        Entry(EntryKind.CHARGE, 1500, "usd", at(10)),
        Entry(EntryKind.CHARGE, 500, "usd", at(5)),
        Entry(EntryKind.PAYMENT, 1500, "usd", at(4)),
        Entry(EntryKind.REFUND, 300, "usd", at(3)),
        Entry(EntryKind.WRITE_OFF, 100, "usd", at(2)),
        Entry(EntryKind.ADJUSTMENT, -50, "usd", at(1)),
        Entry(EntryKind.CHARGE, 700, "eur", at(1)),
        Entry(EntryKind.PAYMENT, 700, "eur", at(1)),
    ]
    # 1500 + 500 - 1500 + 300 - 100 - 50
    assert balance(entries) == {"usd": 650}
    assert [signed(e) for e in entries[:3]] == [1500, 500, -1500]


def test_ageing_allocates_credits_to_the_oldest_debits() -> None:
    entries = [
        Entry(EntryKind.CHARGE, 1000, "usd", at(100)),  # 90+
        Entry(EntryKind.CHARGE, 2000, "usd", at(75)),  # 61-90
        Entry(EntryKind.CHARGE, 3000, "usd", at(45)),  # 31-60
        Entry(EntryKind.CHARGE, 4000, "usd", at(3)),  # 0-30
        Entry(EntryKind.PAYMENT, 2500, "usd", at(1)),  # settles the 90+ and half the 61-90
    ]
    (aged,) = ageing(entries, DAY.date())
    assert aged.buckets == {"0-30": 4000, "31-60": 3000, "61-90": 500, "90+": 0}
    assert aged.credit == 0
    assert aged.total == balance(entries)["usd"]


def test_ageing_bucket_edges_and_paid_ahead() -> None:
    entries = [
        Entry(EntryKind.CHARGE, 1, "usd", at(30)),
        Entry(EntryKind.CHARGE, 2, "usd", at(31)),
        Entry(EntryKind.CHARGE, 4, "usd", at(60)),
        Entry(EntryKind.CHARGE, 8, "usd", at(61)),
        Entry(EntryKind.CHARGE, 16, "usd", at(90)),
        Entry(EntryKind.CHARGE, 32, "usd", at(91)),
    ]
    (aged,) = ageing(entries, DAY.date())
    assert aged.buckets == {"0-30": 1, "31-60": 6, "61-90": 24, "90+": 32}
    (ahead,) = ageing(
        [Entry(EntryKind.CHARGE, 100, "usd", at(5)), Entry(EntryKind.PAYMENT, 150, "usd", at(1))],
        DAY.date(),
    )
    assert ahead.buckets == {"0-30": 0, "31-60": 0, "61-90": 0, "90+": 0}
    assert ahead.credit == 50
    assert ahead.total == -50


kinds = st.sampled_from(list(EntryKind))


@given(
    st.lists(
        st.tuples(kinds, st.integers(1, 10_000), st.integers(0, 200), st.booleans()), max_size=30
    )
)
def test_ageing_always_sums_to_the_balance(lines: list[tuple[EntryKind, int, int, bool]]) -> None:
    entries = [
        Entry(kind, -amount if kind is EntryKind.ADJUSTMENT and negative else amount, "usd", at(d))
        for kind, amount, d, negative in lines
    ]
    aged = ageing(entries, DAY.date())
    owed = balance(entries).get("usd", 0)
    assert sum(a.total for a in aged) == owed
    for a in aged:
        assert all(v >= 0 for v in a.buckets.values())
        assert a.credit >= 0
        assert not (a.credit and any(a.buckets.values()))
