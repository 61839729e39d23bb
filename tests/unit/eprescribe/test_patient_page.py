"""The patient page's pure rules: every prescription state has words for the patient, and what
a patient may ask for (a refill while refills remain, else a renewal, never against the
prescriber's ProhibitRenewalRequest)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from eprescribe.contacts import ContactError, ContactKind
from eprescribe.patient_page import WORDS, RefillKind, read_address, refill_kind, status_of
from eprescribe.prescriptions import Prescription
from eprescribe.workflow import State


def rx(state: State, refills: int = 0, dispensed: int = 0, **more: object) -> Prescription:
    return Prescription(
        uuid.uuid4(), uuid.uuid4(), state, (), refills=refills, fills_dispensed=dispensed, **more
    )


def test_every_state_has_plain_words() -> None:
    assert {status_of(s) for s in State} <= set(WORDS)
    assert WORDS[status_of(State.READY)] == "Ready for pick-up"
    assert WORDS[status_of(State.READY, shipped=True)] == "Out for delivery"
    assert status_of(State.COMPLETED, shipped=True).value == "picked_up"
    assert WORDS[status_of("in_review")] == "Being checked by the pharmacist"
    assert status_of(State.CLARIFICATION_REQUESTED).value == "needs_prescriber"
    assert status_of(State.REJECTED) is status_of(State.CANCELLED)


@pytest.mark.parametrize(
    ("state", "refills", "dispensed", "more", "expected"),
    [
        (State.COMPLETED, 2, 1, {}, RefillKind.REFILL),
        (State.COMPLETED, 2, 3, {}, RefillKind.RENEWAL),
        (State.COMPLETED, 0, 1, {}, RefillKind.RENEWAL),
        (State.COMPLETED, 0, 1, {"renewal_prohibited": True}, None),
        (
            State.COMPLETED,
            0,
            1,
            {"renewal_open_since": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
            None,
        ),
        (State.RETURNED_TO_STOCK, 0, 0, {}, RefillKind.REFILL),
        (State.READY, 2, 0, {}, None),
        (State.AWAITING_REVIEW, 2, 0, {}, None),
        (State.CANCELLED, 2, 1, {}, None),
    ],
)
def test_what_a_patient_may_ask_for(
    state: State, refills: int, dispensed: int, more: dict[str, object], expected: RefillKind | None
) -> None:
    assert refill_kind(rx(state, refills, dispensed, **more)) is expected


def test_an_address_is_read_as_the_profile_stores_it() -> None:
    assert read_address(" Pat@Example.NET ") == (ContactKind.EMAIL, "Pat@example.net")
    assert read_address("(555) 555-0123") == (ContactKind.MOBILE, "+15555550123")
    with pytest.raises(ContactError):
        read_address("not a number")
