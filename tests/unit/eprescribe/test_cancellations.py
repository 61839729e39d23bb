"""Which prescription a CancelRx cancels: each path to a match, and each way to none."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from eprescribe.cancellations import Candidate, Found, NotFound, NotFoundReason, match
from eprescribe.ncpdp import CancelRequest, CancelRx, Party, parse_message
from eprescribe.workflow import State
from tests.support.script_samples import cancelrx_xml

EHR = Party("D", "9990001")
ORDER = "ORD-TEST-NEWRX-0001"


def request(**fields: Any) -> CancelRequest:
    message = parse_message(cancelrx_xml(**fields))
    assert isinstance(message.body, CancelRx)
    return CancelRequest.of(message.header, message.body)


def candidate(n: int, **changes: Any) -> Candidate:
    """The prescription newrx_xml() made (what cancelrx_xml() cancels), then ``changes``."""
    stored = Candidate(
        prescription_id=uuid.UUID(int=n),
        state=State.AWAITING_REVIEW,
        sender=EHR,
        prescriber_order_number=ORDER,
        patient_last="TESTPATIENT",
        patient_first="ALEX",
        patient_born=dt.date(1980, 1, 1),
        drug_description="TESTDRUG 10 MG ORAL TABLET",
        ndc="99999000101",
    )
    return dataclasses.replace(stored, **changes)


def test_by_the_prescriber_order_number_from_the_same_sender() -> None:
    others = [
        candidate(1, prescriber_order_number="ORD-OTHER"),
        candidate(2, sender=Party("D", "9990002")),
    ]
    meant = candidate(3)
    assert match(request(), [*others, meant]) == Found(meant)


def test_a_sender_without_qualifier_is_the_same_sender() -> None:
    meant = candidate(1, sender=Party(None, "9990001"))
    assert match(request(), [meant]) == Found(meant)
    other_kind = candidate(2, sender=Party("P", "9990001"))
    assert match(request(), [other_kind]) == NotFound(NotFoundReason.UNKNOWN_NUMBER)


def test_by_the_rx_reference_number_the_pharmacy_gave() -> None:
    # the reference is the pharmacy's: it finds the prescription whatever the order number
    meant = candidate(1, rx_reference_number="RX-1", prescriber_order_number=None)
    decoy = candidate(2)
    assert match(request(rx_reference_number="RX-1"), [decoy, meant]) == Found(meant)


def test_an_unknown_reference_falls_back_to_the_order_number() -> None:
    meant = candidate(1)
    assert match(request(rx_reference_number="RX-UNKNOWN"), [meant]) == Found(meant)


def test_names_are_compared_normalised_and_drugs_by_ndc_first() -> None:
    meant = candidate(1, patient_last="Testpatient", patient_first="Álex ", drug_description="x")
    assert match(request(), [meant]) == Found(meant)


def test_without_an_ndc_the_description_confirms() -> None:
    meant = candidate(1, ndc=None, drug_description="testdrug  10 mg oral tablet")
    assert match(request(), [meant]) == Found(meant)
    other = candidate(2, ndc=None, drug_description="TESTDRUG 20 MG ORAL TABLET")
    assert match(request(), [other]) == NotFound(NotFoundReason.NOT_CONFIRMED)


def test_no_number_finds_nothing() -> None:
    assert match(request(order_number=None), [candidate(1)]) == NotFound(NotFoundReason.NO_NUMBER)


def test_an_unknown_number_finds_nothing() -> None:
    found = match(request(order_number="ORD-NEVER-SENT"), [candidate(1)])
    assert found == NotFound(NotFoundReason.UNKNOWN_NUMBER)
    assert match(request(), []) == NotFound(NotFoundReason.UNKNOWN_NUMBER)


def test_the_number_with_another_patient_or_drug_finds_nothing() -> None:
    for different in (
        candidate(1, patient_first="ROBIN"),
        candidate(2, patient_born=dt.date(1980, 1, 2)),
        candidate(3, ndc="99999000202"),
    ):
        assert match(request(), [different]) == NotFound(NotFoundReason.NOT_CONFIRMED)


def test_two_confirmed_candidates_are_ambiguous() -> None:
    # the same order number twice (an order sent again under its number): neither is guessed
    twins = [candidate(1), candidate(2, state=State.CANCELLED)]
    assert match(request(), twins) == NotFound(NotFoundReason.AMBIGUOUS)


def test_only_the_confirmed_one_of_two_numbered_matches() -> None:
    meant = candidate(1)
    assert match(request(), [candidate(2, patient_first="ROBIN"), meant]) == Found(meant)


def test_a_prescription_replaced_by_the_prescriber_is_not_a_second_candidate() -> None:
    # an approved change (or a renewal) keeps the order number: the cancel means the latest
    original = candidate(1, state=State.CANCELLED)
    replacement = candidate(2, replaces=original.prescription_id)
    assert match(request(), [original, replacement]) == Found(replacement)
    renewed = candidate(3, replaces=replacement.prescription_id)
    assert match(request(), [original, replacement, renewed]) == Found(renewed)
    # not a replacement of this one: still two orders under one number
    assert match(request(), [original, candidate(4, replaces=uuid.UUID(int=99))]) == NotFound(
        NotFoundReason.AMBIGUOUS
    )
