"""CancelRx: the order it repeats, the numbers naming it, and each rejection with its XPath."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from eprescribe.ncpdp import (
    CancelRequest,
    CancelRx,
    ContentInvalidError,
    Name,
    Party,
    ScriptRejection,
    StandardViolationError,
    parse_message,
)
from tests.support.script_samples import cancelrx_xml

C = "/Message/Body/CancelRx"
MED = f"{C}/MedicationPrescribed"


def cancelrx(document: bytes) -> CancelRx:
    body = parse_message(document).body
    assert isinstance(body, CancelRx)
    return body


def rejection(document: bytes) -> ScriptRejection:
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    return caught.value


def test_a_sender_s_cancelrx_reads_as_the_order_it_cancels() -> None:
    message = parse_message(cancelrx_xml(rx_reference_number="RX-1", controlled=True))
    body = message.body
    assert message.transaction == "CancelRx"
    assert isinstance(body, CancelRx)
    assert body.patient.name == Name("TESTPATIENT", "ALEX")
    assert body.patient.date_of_birth is not None
    assert body.patient.date_of_birth.date == dt.date(1980, 1, 1)
    assert body.pharmacy is not None
    assert body.pharmacy.ncpdpid == "1234567"
    assert (body.prescriber.npi, body.prescriber.dea_number) == ("1111111112", "BT1234563")
    assert body.medication.drug_description == "TESTOPIOID 5 MG ORAL TABLET"
    assert body.medication.dea_schedule == "C48675"
    assert body.medication.quantity.value == Decimal(60)
    request = CancelRequest.of(message.header, body)
    assert request.sender == Party("D", "9990001")
    assert (request.prescriber_order_number, request.rx_reference_number) == (
        "ORD-TEST-NEWRX-0001",
        "RX-1",
    )
    assert request.sent_time == dt.datetime(2025, 1, 16, 9, tzinfo=dt.UTC)


def test_the_pharmacy_block_is_optional() -> None:
    assert cancelrx(cancelrx_xml(omit=[f"{C}/Pharmacy"])).pharmacy is None


def test_numbers_are_optional_in_the_message_and_matter_to_the_match() -> None:
    message = parse_message(cancelrx_xml(order_number=None))
    assert isinstance(message.body, CancelRx)
    assert message.header.prescriber_order_number is None


def test_the_newrx_s_other_blocks_are_tolerated_in_their_places() -> None:
    allergy = (
        "<AllergyOrAdverseEvent><NoKnownAllergies>Y</NoKnownAllergies></AllergyOrAdverseEvent>"
    )
    document = cancelrx_xml(append={f"{C}": "<FollowUpPrescriber><Any/></FollowUpPrescriber>"})
    # AllergyOrAdverseEvent comes before Patient: put it there by hand
    document = document.replace(b"<CancelRx>", b"<CancelRx>" + allergy.encode())
    assert cancelrx(document).patient.name == Name("TESTPATIENT", "ALEX")


@pytest.mark.parametrize(
    ("missing", "xpath"),
    [
        ("Patient", f"{C}/Patient"),
        ("Prescriber", f"{C}/Prescriber"),
        ("MedicationPrescribed", f"{C}/MedicationPrescribed"),
        ("MedicationPrescribed/Quantity", f"{MED}/Quantity"),
        ("MedicationPrescribed/Sig", f"{MED}/Sig"),
        ("Prescriber/NonVeterinarian/Identification/NPI", f"{C}/Prescriber/NonVeterinarian"),
    ],
)
def test_what_the_order_requires_is_required(missing: str, xpath: str) -> None:
    error = rejection(cancelrx_xml(omit=[f"{C}/{missing}"]))
    assert isinstance(error, StandardViolationError)
    assert error.xpath is not None
    assert error.xpath.startswith(xpath)


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("Patient/HumanPatient/Gender", "X"),
        ("MedicationPrescribed/DrugCoded/ProductCode/Qualifier", "NDC"),
        ("MedicationPrescribed/Quantity/CodeListQualifier", "99"),
        ("MedicationPrescribed/Substitutions", "7"),
        ("MedicationPrescribed/WrittenDate/Date", "15/01/2025"),
    ],
)
def test_bad_codes_and_values_are_3000_with_the_xpath(element: str, value: str) -> None:
    error = rejection(cancelrx_xml(replace={f"{C}/{element}": value}))
    assert (type(error), error.description_code, error.xpath) == (
        StandardViolationError,
        "3000",
        f"{C}/{element}",
    )


def test_an_unexpected_element_is_3000() -> None:
    error = rejection(cancelrx_xml(append={C: "<Unexpected>1</Unexpected>"}))
    assert (error.description_code, error.xpath) == ("3000", f"{C}/Unexpected")


def test_a_pharmacy_other_than_the_addressee_is_2000() -> None:
    error = rejection(cancelrx_xml(pharmacy_ncpdpid="7654321"))
    assert isinstance(error, ContentInvalidError)
    assert error.xpath == f"{C}/Pharmacy/Identification/NCPDPID"


def test_a_birth_after_the_message_is_2000() -> None:
    error = rejection(cancelrx_xml(date_of_birth="2025-02-01"))
    assert (error.description_code, error.xpath) == (
        "2000",
        f"{C}/Patient/HumanPatient/DateOfBirth/Date",
    )
