"""RxChangeResponse and RxRenewalResponse: the answer, the blocks they repeat, and each
rejection with its XPath, on messages shaped as EHRs send them (optional parts absent, the
SCRIPT namespace, the request's echoes)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eprescribe.ncpdp import (
    Answer,
    ContentInvalidError,
    PrescriberResponse,
    ResponseKind,
    ScriptRejection,
    StandardViolationError,
    parse_message,
)
from eprescribe.ncpdp.prescriber_response import require_relates_to
from tests.support.script_samples import response_xml

CHANGE = "/Message/Body/RxChangeResponse"
RENEWAL = "/Message/Body/RxRenewalResponse"
DENIED = "<Denied><ReasonCode>AA</ReasonCode><ReasonCode>AC</ReasonCode>"
DENIED += "<DenialReason>Not my patient any more</DenialReason></Denied>"


def read(document: bytes) -> PrescriberResponse:
    body = parse_message(document).body
    assert isinstance(body, PrescriberResponse)
    return body


def rejection(document: bytes) -> ScriptRejection:
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    return caught.value


def test_a_change_approved_with_changes_reads_as_what_the_prescriber_authorises() -> None:
    message = parse_message(
        response_xml(
            "RxChangeResponse",
            "<ApprovedWithChanges><Note>Half the strength</Note></ApprovedWithChanges>",
            request_code="S",
            drug_description="lisinopril 5 MG Oral Tablet",
            quantity="30",
        )
    )
    assert message.transaction == "RxChangeResponse"
    assert require_relates_to(message.header) == "HUB-REQUEST-0001"
    body = message.body
    assert isinstance(body, PrescriberResponse)
    assert body.transaction == "RxChangeResponse"
    assert body.answer == Answer(ResponseKind.APPROVED_WITH_CHANGES, text="Half the strength")
    assert body.request_code == "S"
    assert body.medication is not None
    assert body.medication.drug_description == "lisinopril 5 MG Oral Tablet"
    assert body.medication.quantity.value == Decimal(30)
    assert body.pharmacy is not None
    assert body.pharmacy.ncpdpid == "1234567"
    assert body.prescriber.npi == "1111111112"


def test_a_denial_with_its_reasons_and_no_optional_blocks() -> None:
    body = read(
        response_xml(
            "RxRenewalResponse",
            DENIED,
            with_medication=False,
            order_number=None,
            omit=["Body/RxRenewalResponse/Pharmacy"],
        )
    )
    assert body.answer == Answer(ResponseKind.DENIED, ("AA", "AC"), None, "Not my patient any more")
    assert (body.medication, body.pharmacy) == (None, None)
    # a denial whose reason is in words only is accepted too
    words = read(
        response_xml("RxChangeResponse", "<Denied><DenialReason>No</DenialReason></Denied>")
    )
    assert words.answer == Answer(ResponseKind.DENIED, text="No")


def test_a_validated_answer_carries_the_approval_number() -> None:
    body = read(
        response_xml(
            "RxChangeResponse",
            "<Validated><ReasonCode>GM</ReasonCode><ReferenceNumber>PA-123</ReferenceNumber>"
            "<Note>Plan approved</Note></Validated>",
            request_code="P",
        )
    )
    assert body.answer == Answer(ResponseKind.VALIDATED, ("GM",), "PA-123", "Plan approved")
    assert not body.answer.kind.makes_prescription


def test_renewal_answers_and_the_request_s_echo() -> None:
    echo = (
        "<MedicationDispensed><DrugDescription>TESTDRUG 10 MG ORAL TABLET</DrugDescription>"
        "</MedicationDispensed>"
    )
    replace = response_xml("RxRenewalResponse", "<Replace/>", sig_text="Take 1 daily")
    # the request's MedicationDispensed echoed before the MedicationPrescribed: tolerated
    root_edit = replace.replace(
        b"<MedicationPrescribed>", echo.encode() + b"<MedicationPrescribed>"
    )
    body = read(root_edit)
    assert body.answer.kind is ResponseKind.REPLACE
    assert body.medication is not None
    assert body.medication.sig.text == "Take 1 daily"
    assert read(response_xml("RxRenewalResponse", "<Approved/>")).answer.kind.makes_prescription


def test_a_namespaced_response_as_some_senders_write_it() -> None:
    document = response_xml("RxChangeResponse", "<Approved><Note>ok</Note></Approved>")
    namespaced = document.replace(
        b"<Message ", b'<Message xmlns="http://www.ncpdp.org/schema/SCRIPT" ', 1
    )
    message = parse_message(namespaced)
    assert isinstance(message.body, PrescriberResponse)
    assert message.body.answer == Answer(ResponseKind.APPROVED, text="ok")


def test_a_controlled_answer_keeps_its_signature_header() -> None:
    message = parse_message(
        response_xml("RxChangeResponse", "<Approved/>", controlled=True, drug_description=None)
    )
    assert message.header.digital_signature is not None
    assert message.header.digital_signature.indicator is True
    assert isinstance(message.body, PrescriberResponse)
    assert message.body.medication is not None
    assert message.body.medication.dea_schedule == "C48675"


@pytest.mark.parametrize(
    ("document", "kind", "xpath"),
    [
        # each transaction has its own choices
        (
            response_xml("RxRenewalResponse", "<Validated/>"),
            StandardViolationError,
            f"{RENEWAL}/Response/Validated",
        ),
        (
            response_xml("RxChangeResponse", "<Replace/>"),
            StandardViolationError,
            f"{CHANGE}/Response/Replace",
        ),
        (
            response_xml("RxChangeResponse", "<Pending/>"),
            StandardViolationError,
            f"{CHANGE}/Response/Pending",
        ),
        # exactly one answer
        (
            response_xml(
                "RxChangeResponse",
                "<Approved/>",
                append={"Body/RxChangeResponse/Response": "<Denied/>"},
            ),
            StandardViolationError,
            f"{CHANGE}/Response/Denied",
        ),
        # an approval names what it approves
        (
            response_xml("RxChangeResponse", "<Approved/>", with_medication=False),
            StandardViolationError,
            f"{CHANGE}/MedicationPrescribed",
        ),
        (
            response_xml("RxRenewalResponse", "<Replace/>", with_medication=False),
            StandardViolationError,
            f"{RENEWAL}/MedicationPrescribed",
        ),
        # the blocks are read as in a NewRx
        (
            response_xml("RxChangeResponse", "<Approved/>", omit=["Body/RxChangeResponse/Patient"]),
            StandardViolationError,
            f"{CHANGE}/Patient",
        ),
        (
            response_xml(
                "RxChangeResponse",
                "<Approved/>",
                omit=["Body/RxChangeResponse/Prescriber/NonVeterinarian/Identification/NPI"],
            ),
            StandardViolationError,
            f"{CHANGE}/Prescriber/NonVeterinarian/Identification/NPI",
        ),
        (
            response_xml("RxChangeResponse", "<Approved/>", quantity="0"),
            ContentInvalidError,
            f"{CHANGE}/MedicationPrescribed/Quantity/Value",
        ),
        (
            response_xml("RxChangeResponse", "<Approved/>", pharmacy_ncpdpid="7654321"),
            ContentInvalidError,
            f"{CHANGE}/Pharmacy/Identification/NCPDPID",
        ),
        # lengths and places
        (
            response_xml(
                "RxChangeResponse", f"<Denied><DenialReason>{'x' * 71}</DenialReason></Denied>"
            ),
            StandardViolationError,
            f"{CHANGE}/Response/Denied/DenialReason",
        ),
        (
            response_xml("RxChangeResponse", "<Denied><ReasonCode>ABCD</ReasonCode></Denied>"),
            StandardViolationError,
            f"{CHANGE}/Response/Denied/ReasonCode",
        ),
        (
            response_xml(
                "RxChangeResponse", "<Approved/>", append={"Body/RxChangeResponse": "<Unexpected/>"}
            ),
            StandardViolationError,
            f"{CHANGE}/Unexpected",
        ),
    ],
)
def test_rejections_name_the_element(
    document: bytes, kind: type[ScriptRejection], xpath: str
) -> None:
    error = rejection(document)
    assert (type(error), error.xpath) == (kind, xpath)


def test_a_response_without_relates_to_names_no_request() -> None:
    message = parse_message(
        response_xml("RxChangeResponse", "<Approved/>", omit=["Header/RelatesToMessageID"])
    )
    with pytest.raises(StandardViolationError) as caught:
        require_relates_to(message.header)
    assert caught.value.xpath == "/Message/Header/RelatesToMessageID"
