"""Instalment plans, the day's reconciliation and the webhook signature."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprescribe.payments import (
    LedgerMovement,
    PlanRefused,
    ProviderMovement,
    SignatureRefused,
    instalments,
    reconcile,
    sign,
    verify_signature,
)

START = dt.date(2027, 1, 15)


def test_instalments_split_with_the_remainder_first() -> None:
    plan = instalments(10_000, 3, START, 30)
    assert [(i.number, i.due, i.amount) for i in plan] == [
        (1, START, 3334),
        (2, dt.date(2027, 2, 14), 3333),
        (3, dt.date(2027, 3, 16), 3333),
    ]


@pytest.mark.parametrize(
    ("total", "count", "every", "code"),
    [
        (10_000, 1, 30, "plan_count"),
        (10_000, 25, 30, "plan_count"),
        (10_000, 3, 0, "plan_interval"),
        (10_000, 3, 91, "plan_interval"),
        (299, 3, 30, "plan_too_small"),
    ],
)
def test_plans_refused(total: int, count: int, every: int, code: str) -> None:
    with pytest.raises(PlanRefused) as refused:
        instalments(total, count, START, every)
    assert refused.value.code == code


@given(st.integers(200, 10_000_000), st.integers(2, 24))
def test_instalments_sum_to_the_total(total: int, count: int) -> None:
    if total < count * 100:
        return
    plan = instalments(total, count, START, 14)
    assert sum(i.amount for i in plan) == total
    assert max(i.amount for i in plan) - min(i.amount for i in plan) <= 1


def led(ref: str, amount: int = 1000, kind: str = "payment") -> LedgerMovement:
    return LedgerMovement(ref, kind, amount, "usd", f"e-{ref}")


def pro(ref: str, amount: int = 1000, kind: str = "payment") -> ProviderMovement:
    return ProviderMovement(ref, kind, amount, "usd", f"txn-{ref}", "po_1")


def test_reconciliation_clean() -> None:
    done = reconcile(
        [led("ch_1"), led("re_1", 200, "refund")], [pro("ch_1"), pro("re_1", 200, "refund")]
    )
    assert done.clean
    assert done.totals() == {"usd": {"payment": 1000, "refund": 200}}


def test_a_refund_failed_after_acceptance_matches_beside_its_refund() -> None:
    """The refund and its failure share the refund's identifier: each matches its own kind,
    and a failure on one side only is missing on the other, not a duplicate."""
    ours = [led("ch_1"), led("re_1", 200, "refund"), led("re_1", 200, "refund_failure")]
    theirs = [pro("ch_1"), pro("re_1", 200, "refund"), pro("re_1", 200, "refund_failure")]
    done = reconcile(ours, theirs)
    assert done.clean
    assert done.totals() == {"usd": {"payment": 1000, "refund": 200, "refund_failure": 200}}
    late = reconcile(ours, theirs[:2])  # the provider has not recorded the failure yet
    assert [(d.code, d.ref, d.ledger[0].kind) for d in late.discrepancies] == [
        ("missing_in_provider", "re_1", "refund_failure")
    ]
    assert len(late.matched) == 2


def test_reconciliation_finds_each_kind_of_discrepancy() -> None:
    done = reconcile(
        [led("ch_1"), led("ch_2", 500), led("ch_3"), led("ch_4"), led("ch_4")],
        [pro("ch_1"), pro("ch_2", 600), pro("ch_5"), pro("ch_4")],
    )
    assert [m[0].ref for m in done.matched] == ["ch_1"]
    found = {(d.code, d.ref) for d in done.discrepancies}
    assert found == {
        ("mismatched", "ch_2"),
        ("missing_in_provider", "ch_3"),
        ("duplicate", "ch_4"),
        ("missing_in_ledger", "ch_5"),
    }
    words = {d.code: d.words for d in done.discrepancies}
    assert words["mismatched"] == "The ledger has payment 500 USD, the provider payment 600 USD."
    assert words["duplicate"] == "Recorded more than once in the ledger."


SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'


def test_signature_verifies_and_refuses() -> None:
    header = sign(SECRET, BODY, 1_800_000_000)
    assert verify_signature(header, BODY, [SECRET], 1_800_000_100) == 1_800_000_000
    # a rolled secret: either verifies
    assert verify_signature(header, BODY, ["whsec_new", SECRET], 1_800_000_000)
    cases = [
        (None, BODY, 1_800_000_000, "signature_missing"),
        ("t=1800000000", BODY, 1_800_000_000, "signature_malformed"),
        ("v1=abc", BODY, 1_800_000_000, "signature_malformed"),
        (header, BODY + b" ", 1_800_000_000, "signature_invalid"),
        (header, BODY, 1_800_000_301, "signature_stale"),
        (header, BODY, 1_799_999_699, "signature_stale"),
        (header.replace("v1=", "v0="), BODY, 1_800_000_000, "signature_malformed"),
    ]
    for given_header, body, now, code in cases:
        with pytest.raises(SignatureRefused) as refused:
            verify_signature(given_header, body, [SECRET], now)
        assert refused.value.code == code, given_header
    with pytest.raises(SignatureRefused):
        verify_signature(header, BODY, ["whsec_other"], 1_800_000_000)
