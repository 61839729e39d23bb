"""What a pharmacist may ask the prescriber, and when: the kinds of change request with what
each needs, and renewal requests (state, refills, ProhibitRenewalRequest), as whole histories."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from eprescribe import prescriptions as rx_rules
from eprescribe import verification
from eprescribe.drugs import DrugReference
from eprescribe.ncpdp.outbound import ChangeRequestCode
from eprescribe.prescriptions import ClarificationAsked, Prescription, RenewalRequested, Reviewer
from eprescribe.verification import MedicationDraft, VerificationError
from eprescribe.workflow import State

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
ANNA = Reviewer(str(uuid.UUID(int=1)))
BORIS = Reviewer(str(uuid.UUID(int=2)))
DRUGS = DrugReference.bundled()
ATORVASTATIN = MedicationDraft("atorvastatin 20 MG Oral Tablet", 30, "C48542", "Take 1 daily", 30)


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def in_review(**facts: object) -> Prescription:
    rx = rx_rules.receive(uuid.UUID(int=7), uuid.UUID(int=9), "client:ehr", "NewRx", T0)
    rx = dataclasses.replace(rx, **facts)  # type: ignore[arg-type]
    rx = rx_rules.start_checks(rx, minutes(1)).rx
    rx = rx_rules.finish_checks(rx, (), minutes(2)).rx
    return rx_rules.claim(rx, ANNA, minutes(3)).rx


def accepted(**facts: object) -> Prescription:
    return rx_rules.approve(in_review(**facts), ANNA, {}, minutes(4)).rx


def question(kind: str, **fields: object) -> verification.ChangeQuestion:
    values: dict[str, object] = {
        "reason": None,
        "text": "Formulary prefers the generic.",
        "sub_codes": (),
        "medications": (),
    }
    values.update(fields)
    return verification.change_question(
        kind,
        values["reason"],
        values["text"],
        values["sub_codes"],  # type: ignore[arg-type]
        values["medications"],  # type: ignore[arg-type]
        DRUGS,
    )


# -- change requests ------------------------------------------------------------------------


def test_a_generic_substitution_proposes_a_drug_of_the_reference() -> None:
    asked = question("G", medications=[ATORVASTATIN])
    assert asked.kind is ChangeRequestCode.GENERIC_SUBSTITUTION
    (proposed,) = asked.medications
    assert proposed.drug_description == "atorvastatin 20 MG Oral Tablet"
    assert (proposed.quantity, proposed.quantity_unit, proposed.days_supply) == (
        Decimal(30),
        "C48542",
        30,
    )
    outcome = rx_rules.ask_prescriber(in_review(), ANNA, asked, minutes(5))
    assert outcome.rx.state is State.CLARIFICATION_REQUESTED
    assert outcome.rx.claim is None
    last = outcome.rx.history[-1]
    assert (last.from_state, last.to_state, last.actor) == (
        State.IN_REVIEW,
        State.CLARIFICATION_REQUESTED,
        ANNA.actor,
    )
    assert last.reason == "change requested (generic substitution): Formulary prefers the generic."
    (event,) = outcome.events
    assert isinstance(event, ClarificationAsked)
    assert event.request is asked


def test_a_description_naming_one_drug_is_the_reference_drug() -> None:
    draft = dataclasses.replace(ATORVASTATIN, drug="Atorvastatin 20mg tablet")
    (proposed,) = question("T", medications=[draft]).medications
    assert proposed.drug_description == "atorvastatin 20 MG Oral Tablet"


@pytest.mark.parametrize(
    ("kind", "fields", "code"),
    [
        ("X", {}, "request_code_invalid"),
        ("G", {}, "medications_required"),
        ("T", {}, "medications_required"),
        ("G", {"medications": [ATORVASTATIN] * 4}, "medications_too_many"),
        ("S", {"medications": [ATORVASTATIN], "reason": "drug"}, "medications_not_allowed"),
        ("P", {"medications": [ATORVASTATIN]}, "medications_not_allowed"),
        ("U", {"medications": [ATORVASTATIN], "sub_codes": ["A"]}, "medications_not_allowed"),
        ("S", {}, "reason_code_invalid"),
        ("S", {"reason": "strength", "text": "   "}, "reason_required"),
        ("P", {"reason": "nonsense"}, "reason_code_invalid"),
        ("U", {}, "sub_codes_required"),
        ("U", {"sub_codes": ["Z"]}, "sub_codes_invalid"),
        ("P", {"sub_codes": ["A"]}, "sub_codes_not_allowed"),
        (
            "G",
            {"medications": [dataclasses.replace(ATORVASTATIN, drug="unobtainium 5 MG")]},
            "drug_unknown",
        ),
        ("G", {"medications": [dataclasses.replace(ATORVASTATIN, quantity=0)]}, "quantity_invalid"),
        (
            "G",
            {"medications": [dataclasses.replace(ATORVASTATIN, quantity="1e9")]},
            "quantity_invalid",
        ),
        (
            "G",
            {"medications": [dataclasses.replace(ATORVASTATIN, quantity_unit="mg")]},
            "quantity_unit_invalid",
        ),
        ("G", {"medications": [dataclasses.replace(ATORVASTATIN, sig=" ")]}, "sig_required"),
        (
            "G",
            {"medications": [dataclasses.replace(ATORVASTATIN, days_supply=0)]},
            "days_supply_invalid",
        ),
        (
            "G",
            {"medications": [dataclasses.replace(ATORVASTATIN, refills=100)]},
            "refills_invalid",
        ),
    ],
)
def test_what_each_kind_needs(kind: str, fields: dict[str, object], code: str) -> None:
    with pytest.raises(VerificationError) as refused:
        question(kind, **fields)
    assert refused.value.code == code


def test_each_kind_and_what_it_carries() -> None:
    assert question("S", reason="strength").reason_code == "strength"
    assert question("P").reason_code == "other"  # optional beyond clarification
    assert question("D", reason="dose", medications=[ATORVASTATIN]).medications
    assert question("OS").medications == ()
    assert question("U", sub_codes=["G", "B", "B"]).sub_codes == ("B", "G")
    assert set(verification.CHANGE_KINDS) == set(ChangeRequestCode)


def test_a_change_request_needs_review_and_the_askers_own_claim() -> None:
    asked = question("P")
    with pytest.raises(VerificationError) as refused:
        rx_rules.ask_prescriber(in_review(), BORIS, asked, minutes(5))
    assert refused.value.code == "claimed_by_other"
    with pytest.raises(VerificationError) as refused:
        rx_rules.ask_prescriber(accepted(), ANNA, asked, minutes(5))
    assert refused.value.code == "wrong_state"
    with pytest.raises(VerificationError) as refused:
        rx_rules.ask_prescriber(in_review(), ANNA, asked, minutes(20))  # the claim ran out
    assert refused.value.code == "claim_required"


def test_a_clarification_keeps_its_history_shape() -> None:
    asked = question("S", reason="strength", text="10 mg or 20 mg?")
    outcome = rx_rules.ask_prescriber(in_review(), ANNA, asked, minutes(5))
    assert outcome.rx.history[-1].reason == "clarification requested (strength): 10 mg or 20 mg?"
    (event,) = outcome.events
    assert isinstance(event, ClarificationAsked)
    assert (event.reason_code, event.request.kind) == (
        "strength",
        ChangeRequestCode.SCRIPT_CLARIFICATION,
    )


# -- renewal requests -----------------------------------------------------------------------


def test_a_renewal_of_an_approved_prescription_without_refills() -> None:
    rx = accepted(refills=0)
    outcome = rx_rules.request_renewal(rx, BORIS, minutes(60), refills=2, note="Out next week.")
    assert outcome.rx == rx  # no state change, no claim needed
    assert outcome.events == (RenewalRequested(BORIS.user_id, minutes(60), "Out next week.", 2),)


def test_refills_written_must_be_stated_used() -> None:
    rx = accepted(refills=3)
    with pytest.raises(VerificationError) as refused:
        rx_rules.request_renewal(rx, ANNA, minutes(60))
    assert refused.value.code == "refills_remaining"
    (event,) = rx_rules.request_renewal(rx, ANNA, minutes(60), refills_used=True).events
    assert isinstance(event, RenewalRequested)
    assert event.asserted


def test_a_prohibited_renewal_is_refused() -> None:
    rx = accepted(refills=0, renewal_prohibited=True)
    refusal = rx_rules.renewal_refusal(rx)
    assert refusal is not None
    assert refusal.code == "renewal_prohibited"
    with pytest.raises(VerificationError) as refused:
        rx_rules.request_renewal(rx, ANNA, minutes(60), refills_used=True)
    assert refused.value.code == "renewal_prohibited"


@pytest.mark.parametrize("state", [s for s in State if s not in rx_rules.ACCEPTED])
def test_only_an_accepted_prescription_is_renewed(state: State) -> None:
    rx = dataclasses.replace(accepted(refills=0), state=state)
    with pytest.raises(VerificationError) as refused:
        rx_rules.request_renewal(rx, ANNA, minutes(60))
    assert refused.value.code == "wrong_state"


def test_renewal_refills_and_note_are_checked() -> None:
    rx = accepted(refills=0)
    with pytest.raises(VerificationError) as refused:
        rx_rules.request_renewal(rx, ANNA, minutes(60), refills=100)
    assert refused.value.code == "refills_invalid"
    with pytest.raises(VerificationError) as refused:
        rx_rules.request_renewal(rx, ANNA, minutes(60), note="  ")
    assert refused.value.code == "reason_required"
