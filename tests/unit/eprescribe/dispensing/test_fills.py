"""The fill aggregate's decisions, pure: who may do what, in which state, with which product,
and what each step leaves behind (the fill's and the prescription's transitions, the RxFill
owed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from eprescribe import prescriptions as rx_rules
from eprescribe.dispensing import fills as rules
from eprescribe.dispensing.fills import FillState, FillStatus
from eprescribe.verification import VerificationError
from eprescribe.workflow import State

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
TODAY = T0.date()
TOM = rules.Staff("00000000-0000-4000-8000-000000000001", rules.TECHNICIAN)
BOB = rules.Staff("00000000-0000-4000-8000-000000000002", rules.PHARMACIST)
CAROL = rules.Staff("00000000-0000-4000-8000-000000000003", rules.PHARMACIST, True)
DRUG = "lisinopril 10 MG Oral Tablet"
ORDER = rules.Order(
    quantity=Decimal(60),
    unit="C48542",
    days_supply=30,
    substitution_allowed=True,
    ndc11="11111010430",
    drug=DRUG,
    controlled=False,
)
PRESCRIBED = rules.Product("11111010430", "L1", TODAY + dt.timedelta(days=365), drug=DRUG)


def approved(refills: int = 1, schedule: str | None = None) -> rx_rules.Prescription:
    return rx_rules.Prescription(
        uuid.UUID(int=1), uuid.UUID(int=2), State.APPROVED, (), schedule, refills=refills
    )


def minutes(n: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def started(
    rx: rx_rules.Prescription | None = None, order: rules.Order = ORDER
) -> rules.FillOutcome:
    return rules.start_fill(rx or approved(), order, (), TOM, uuid.UUID(int=9), T0)


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(VerificationError) as raised:
        call()
    return raised.value.code


def ready(
    order: rules.Order = ORDER, quantity: str = "60", rx: rx_rules.Prescription | None = None
) -> rules.FillOutcome:
    out = started(rx, order)
    out = rules.record_scan(out.fill, out.rx, order, PRESCRIBED, TOM, TODAY)
    reason = "short" if Decimal(quantity) < order.quantity else None
    out = rules.record_quantity(out.fill, out.rx, quantity, reason, TOM)
    out = rules.submit_for_check(out.fill, out.rx, TOM, minutes(1))
    checker = CAROL if out.fill.controlled else BOB
    return rules.approve_product(out.fill, out.rx, checker, minutes(2))


def test_a_fill_starts_from_an_approved_prescription_which_moves_with_it() -> None:
    out = started()
    assert (out.fill.state, out.fill.number, out.fill.quantity_owed) == (
        FillState.FILLING,
        0,
        Decimal(60),
    )
    assert out.needs_rx_number
    assert out.rx.state is State.FILLING
    assert [(t.from_state, t.to_state, t.reason) for t in out.rx.history] == [
        (State.APPROVED, State.FILLING, "fill 0: fill started")
    ]
    in_review = dataclasses.replace(approved(), state=State.IN_REVIEW)
    assert code_of(lambda: started(in_review)) == "wrong_state"
    filling = dataclasses.replace(approved(), state=State.FILLING)
    assert code_of(lambda: started(filling)) == "fill_open"
    nobody = rules.Staff("u", "pharmacy_admin")
    assert code_of(lambda: rules.start_fill(approved(), ORDER, (), nobody, uuid.uuid4(), T0)) == (
        "role_not_allowed"
    )


def test_the_next_fill_completes_a_partial_one_then_counts_the_refills() -> None:
    rx = approved(refills=1)
    partial = (rules.PastFill(0, FillState.COMPLETED, Decimal(40)),)
    assert rules.next_fill(rx, ORDER, partial) == (0, Decimal(20))
    returned = (*partial, rules.PastFill(0, FillState.RETURNED_TO_STOCK, None))
    assert rules.next_fill(rx, ORDER, returned) == (0, Decimal(20))
    whole = (*partial, rules.PastFill(0, FillState.COMPLETED, Decimal(20)))
    assert rules.next_fill(rx, ORDER, whole) == (1, Decimal(60))
    both = (*whole, rules.PastFill(1, FillState.COMPLETED, Decimal(60)))
    with pytest.raises(VerificationError) as raised:
        rules.next_fill(rx, ORDER, both)
    assert raised.value.code == "no_refills_left"


def test_the_product_must_be_the_prescribed_one_or_an_allowed_equivalent() -> None:
    out = started()
    other_labeler = rules.Product("22222020490", "B7", TODAY + dt.timedelta(days=90), drug=DRUG)
    assert rules.record_scan(out.fill, out.rx, ORDER, other_labeler, TOM, TODAY).fill.product
    no_substitution = dataclasses.replace(ORDER, substitution_allowed=False)
    assert (
        code_of(
            lambda: rules.record_scan(out.fill, out.rx, no_substitution, other_labeler, TOM, TODAY)
        )
        == "substitution_not_permitted"
    )
    stronger = rules.Product("33333030530", drug="lisinopril 20 MG Oral Tablet")
    assert code_of(lambda: rules.record_scan(out.fill, out.rx, ORDER, stronger, TOM, TODAY)) == (
        "wrong_product"
    )
    unknown = rules.Product("99999999999")
    assert code_of(lambda: rules.record_scan(out.fill, out.rx, ORDER, unknown, TOM, TODAY)) == (
        "product_unknown"
    )


def test_a_lot_must_last_until_the_supply_ends() -> None:
    out = started()

    def lot(expiry: dt.date) -> rules.Product:
        return dataclasses.replace(PRESCRIBED, expiry=expiry)

    ends = TODAY + dt.timedelta(days=30)
    assert rules.record_scan(out.fill, out.rx, ORDER, lot(ends), TOM, TODAY).fill.product
    before = ends - dt.timedelta(days=1)
    assert code_of(lambda: rules.record_scan(out.fill, out.rx, ORDER, lot(before), TOM, TODAY)) == (
        "lot_expires_too_soon"
    )
    past = TODAY - dt.timedelta(days=1)
    assert code_of(lambda: rules.record_scan(out.fill, out.rx, ORDER, lot(past), TOM, TODAY)) == (
        "lot_expired"
    )


def test_quantities() -> None:
    out = started()
    for bad, code in (
        ("0", "quantity_invalid"),
        ("abc", "quantity_invalid"),
        ("NaN", "quantity_invalid"),
        ("61", "quantity_exceeds_owed"),
        ("59", "partial_reason_required"),
    ):
        assert (
            code_of(lambda bad=bad: rules.record_quantity(out.fill, out.rx, bad, None, TOM)) == code
        )
    partial = rules.record_quantity(out.fill, out.rx, "59.5", "short", TOM).fill
    assert (partial.partial, partial.partial_reason) == (True, "short")


def test_the_product_check_is_another_pharmacists() -> None:
    out = started()
    assert (
        code_of(lambda: rules.submit_for_check(out.fill, out.rx, TOM, minutes(1)))
        == "fill_incomplete"
    )
    out = rules.record_scan(out.fill, out.rx, ORDER, PRESCRIBED, TOM, TODAY)
    out = rules.record_quantity(out.fill, out.rx, "60", None, TOM)
    missing = ("the photo of the counted product",)
    with pytest.raises(VerificationError) as raised:
        rules.submit_for_check(out.fill, out.rx, TOM, minutes(1), missing)
    assert "the photo of the counted product" in raised.value.detail
    out = rules.submit_for_check(out.fill, out.rx, TOM, minutes(1))
    assert out.rx.state is State.PRODUCT_CHECK
    assert (
        code_of(lambda: rules.approve_product(out.fill, out.rx, TOM, minutes(2)))
        == "pharmacist_required"
    )
    own = dataclasses.replace(out.fill, filled_by=BOB.user_id)
    assert code_of(lambda: rules.approve_product(own, out.rx, BOB, minutes(2))) == "own_fill"
    controlled = dataclasses.replace(out.fill, controlled=True)
    assert code_of(lambda: rules.approve_product(controlled, out.rx, BOB, minutes(2))) == (
        "controlled_substance_permission"
    )
    back = rules.send_back(out.fill, out.rx, BOB, "recount", minutes(2))
    assert (back.fill.state, back.rx.state) == (FillState.FILLING, State.FILLING)
    assert back.fill.history[-1].reason == "sent back: recount"
    assert (
        rules.approve_product(controlled, out.rx, CAROL, minutes(2)).fill.state is FillState.READY
    )


def test_the_hand_over_tells_the_prescriber_what_was_dispensed() -> None:
    out = ready()
    out = rules.place_in_bin(out.fill, out.rx, TOM, " A-12 ")
    assert out.fill.bin == "A-12"
    handed = rules.HandOver("the patient", False, rules.Counselling.VIDEO, True)
    assert (
        code_of(lambda: rules.hand_over(out.fill, out.rx, TOM, handed, minutes(3)))
        == "consult_required"
    )
    unsigned = rules.HandOver("the patient", False, rules.Counselling.REFUSED, False)
    assert (
        code_of(lambda: rules.hand_over(out.fill, out.rx, TOM, unsigned, minutes(3)))
        == "signature_required"
    )
    done = rules.hand_over(
        out.fill, out.rx, TOM, dataclasses.replace(handed, consult_id=uuid.uuid4()), minutes(3)
    )
    assert (done.fill.state, done.rx.state, done.rx.fills_dispensed) == (
        FillState.COMPLETED,
        State.COMPLETED,
        1,
    )
    (event,) = done.events
    assert event.status is FillStatus.DISPENSED
    partial = ready(quantity="30")
    signed = rules.HandOver("an agent", False, rules.Counselling.ACCEPTED, True)
    (event,) = rules.hand_over(partial.fill, partial.rx, TOM, signed, minutes(3)).events
    assert event.status is FillStatus.PARTIALLY_DISPENSED


def test_a_controlled_substance_is_handed_over_after_an_identity_check() -> None:
    order = dataclasses.replace(ORDER, controlled=True)
    out = ready(order, rx=approved(refills=0, schedule="C48675"))
    unchecked = rules.HandOver("the patient", False, rules.Counselling.REFUSED, True)
    assert code_of(lambda: rules.hand_over(out.fill, out.rx, TOM, unchecked, minutes(3))) == (
        "identity_check_required"
    )
    checked = dataclasses.replace(unchecked, id_checked=True)
    assert rules.hand_over(out.fill, out.rx, TOM, checked, minutes(3)).fill.hand_over == checked


def test_return_to_stock_after_the_days_set() -> None:
    out = ready()
    early = minutes(2) + dt.timedelta(days=14) - dt.timedelta(seconds=1)
    assert (
        code_of(lambda: rules.return_to_stock(out.fill, out.rx, "system:x", early, 14))
        == "too_early"
    )
    back = rules.return_to_stock(out.fill, out.rx, "system:x", early + dt.timedelta(seconds=1), 14)
    assert (back.fill.state, back.rx.state) == (
        FillState.RETURNED_TO_STOCK,
        State.RETURNED_TO_STOCK,
    )
    (event,) = back.events
    assert event.status is FillStatus.NOT_DISPENSED
    again = rules.start_fill(
        back.rx,
        ORDER,
        (rules.PastFill(0, FillState.RETURNED_TO_STOCK, None),),
        TOM,
        uuid.uuid4(),
        minutes(9),
    )
    assert (again.fill.number, again.needs_rx_number) == (0, True)


def test_a_cancelled_fill_ends_and_tells_not_dispensed() -> None:
    out = ready()
    cancelled = rules.cancel(out.fill, out.rx, "client:ehr", "CancelRx", minutes(5))
    assert cancelled.fill.state is FillState.CANCELLED
    assert [e.status for e in cancelled.events] == [FillStatus.NOT_DISPENSED]
    assert (
        code_of(lambda: rules.cancel(cancelled.fill, out.rx, "client:ehr", "x", minutes(6)))
        == "wrong_state"
    )


@pytest.mark.parametrize(
    ("indicator", "statuses"),
    [
        (None, set()),
        ("All Fill Statuses Except Transferred", set(FillStatus)),
        (
            "dispensed  and partially dispensed",
            {FillStatus.DISPENSED, FillStatus.PARTIALLY_DISPENSED},
        ),
        ("Not Dispensed", {FillStatus.NOT_DISPENSED}),
        ("Cancel All Fill Statuses", set()),
        ("Something New", set(FillStatus)),
    ],
)
def test_what_the_prescriber_asked_to_be_told(
    indicator: str | None, statuses: set[FillStatus]
) -> None:
    assert {s for s in FillStatus if rules.wanted(indicator, s)} == statuses


def test_rx_numbers_are_seven_digits() -> None:
    assert rules.rx_number(42) == "0000042"
    with pytest.raises(ValueError, match="out of range"):
        rules.rx_number(10**7)


@pytest.mark.parametrize(
    ("days", "prescribed", "dispensed", "expected"),
    [
        (30, "60", "60", 30),  # the whole quantity
        (30, "60", "90", 30),  # more than prescribed: the days written
        (30, "60", "20", 10),  # a partial fill: in proportion
        (30, "60", "1", 1),  # at least one day
        (30, "60", "2.5", 1),  # rounded down
        (None, "60", "20", None),  # no days supply written
    ],
)
def test_the_days_a_dispensed_quantity_lasts(
    days: int | None, prescribed: str, dispensed: str, expected: int | None
) -> None:
    assert rules.days_supplied(days, Decimal(prescribed), Decimal(dispensed)) == expected
