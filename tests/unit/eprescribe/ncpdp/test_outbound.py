"""What the hub sends for a pharmacy is valid SCRIPT 2017071: built from the stored prescription,
it parses again with the hub's own validator into the same values, and hostile values are
transliterated, shortened or refused, never sent broken."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from eprescribe.ncpdp import (
    DigitalSignature,
    Header,
    MedicationPrescribed,
    Name,
    NewRx,
    Party,
    ProductCode,
    Quantity,
    ScriptRejection,
    SenderSoftware,
    parse_message,
)
from eprescribe.ncpdp.outbound import (
    CANCEL_DENIAL_REASONS,
    PRESCRIBER_AUTHORIZATION_SUBCODES,
    CancelRxResponse,
    ChangeRequestCode,
    MedicationLine,
    OriginalPrescription,
    OutboundError,
    RenewalProhibitedError,
    RxChangeRequest,
    RxRenewalRequest,
    build_rx_change_request,
    cancel_rx_response,
    rx_change_request,
    rx_fill,
    rx_renewal_request,
)
from eprescribe.ncpdp.outbound.cancelrxresponse import RESPONSE_TEXT_MAX
from tests.support.script_samples import edit, newrx_xml

HUB = SenderSoftware("Telepharm", "Telepharm Hub", "0.1")
SENT = dt.datetime(2025, 1, 20, 14, 30, 5, tzinfo=dt.UTC)
GENERIC = MedicationLine(
    drug_description="TESTDRUG GENERIC 10 MG ORAL TABLET",
    quantity=Quantity(Decimal(60), "38", "C48542"),
    substitutions="0",
    sig_text="Take 1 tablet by mouth twice daily",
    product_code=ProductCode("99999000202", "ND"),
    days_supply=30,
    number_of_refills=1,
)


def stored(**changes: object) -> OriginalPrescription:
    """The prescription as the intake stores it: parsed from a synthetic NewRx."""
    message = parse_message(newrx_xml(message_id="NEWRX-0001", note="Brand preferred"))
    newrx = message.body
    assert isinstance(newrx, NewRx)
    assert newrx.pharmacy is not None
    original = OriginalPrescription(
        prescriber_party=message.header.from_,
        pharmacy_party=message.header.to,
        message_id=message.header.message_id,
        prescriber_order_number=message.header.prescriber_order_number,
        patient=newrx.patient,
        pharmacy=newrx.pharmacy,
        prescriber=newrx.prescriber,
        medication=newrx.medication,
        prohibit_renewal_request=newrx.prohibit_renewal_request,
        rx_reference_number="RX-000123",
    )
    return dataclasses.replace(original, **changes)


def change(code: ChangeRequestCode, **kwargs: object) -> bytes:
    return rx_change_request(
        stored(), code, message_id="HUB-OUT-0001", sent_time=SENT, software=HUB, **kwargs
    )


def expected_header(relates_to: str | None) -> Header:
    return Header(
        to=Party("D", "9990001"),
        from_=Party("P", "1234567"),
        message_id="HUB-OUT-0001",
        sent_time=SENT,
        sender_software=HUB,
        relates_to_message_id=relates_to,
        prescriber_order_number="ORD-NEWRX-0001",
        rx_reference_number="RX-000123",
    )


# --- RxChangeRequest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "requested", "sub_codes"),
    [
        (ChangeRequestCode.GENERIC_SUBSTITUTION, (GENERIC,), ()),
        (ChangeRequestCode.THERAPEUTIC_INTERCHANGE, (GENERIC,), ()),
        (ChangeRequestCode.PRIOR_AUTHORIZATION, (), ()),
        (ChangeRequestCode.SCRIPT_CLARIFICATION, (), ()),
        (ChangeRequestCode.DRUG_USE_EVALUATION, (), ()),
        (ChangeRequestCode.OUT_OF_STOCK, (GENERIC,), ()),
        (ChangeRequestCode.PRESCRIBER_AUTHORIZATION, (), ("B", "G")),
    ],
)
def test_change_request_round_trips_for_each_code(
    code: ChangeRequestCode, requested: tuple[MedicationLine, ...], sub_codes: tuple[str, ...]
) -> None:
    data = change(code, requested=requested, sub_codes=sub_codes)
    message = parse_message(data)
    original = stored()
    assert message.transaction == "RxChangeRequest"
    assert message.header == expected_header(relates_to="NEWRX-0001")
    assert message.body == RxChangeRequest(
        request_code=code,
        patient=original.patient,
        pharmacy=original.pharmacy,
        prescriber=original.prescriber,
        medication_prescribed=original.medication,
        medication_requested=requested,
        request_sub_codes=sub_codes,
    )
    root = etree.fromstring(data)
    assert root.findtext("Body/RxChangeRequest/MessageRequestCode") == code.value


def test_change_request_codes_are_the_documented_values() -> None:
    assert {code.value for code in ChangeRequestCode} == {"G", "T", "P", "S", "D", "OS", "U"}
    assert frozenset("ABCDEFGHIJKLM") == PRESCRIBER_AUTHORIZATION_SUBCODES


@pytest.mark.parametrize(
    ("code", "requested", "sub_codes", "problem"),
    [
        (ChangeRequestCode.GENERIC_SUBSTITUTION, (), (), "needs a MedicationRequested"),
        (ChangeRequestCode.THERAPEUTIC_INTERCHANGE, (), (), "needs a MedicationRequested"),
        (ChangeRequestCode.PRESCRIBER_AUTHORIZATION, (), (), "needs a MessageRequestSubCode"),
        (ChangeRequestCode.PRESCRIBER_AUTHORIZATION, (), ("Z",), "unknown MessageRequestSubCode"),
        (ChangeRequestCode.SCRIPT_CLARIFICATION, (), ("A",), "only prescriber authorization"),
    ],
)
def test_change_request_refuses_inconsistent_codes(
    code: ChangeRequestCode,
    requested: tuple[MedicationLine, ...],
    sub_codes: tuple[str, ...],
    problem: str,
) -> None:
    with pytest.raises(ValueError, match=problem):
        change(code, requested=requested, sub_codes=sub_codes)


def test_inbound_change_request_with_bad_code_is_rejected_not_crashing() -> None:
    data = change(ChangeRequestCode.SCRIPT_CLARIFICATION)
    path = "/Message/Body/RxChangeRequest"
    for code, description_code, xpath in (
        ("X", "3000", f"{path}/MessageRequestCode"),
        ("U", "2000", f"{path}/MessageRequestSubCode"),
        ("G", "2000", f"{path}/MedicationRequested"),
    ):
        replace = {"Body/RxChangeRequest/MessageRequestCode": code}
        with pytest.raises(ScriptRejection) as caught:
            parse_message(edit(data, replace=replace))
        assert caught.value.description_code == description_code
        assert caught.value.xpath == xpath


def test_elements_are_in_schema_order_with_root_attributes() -> None:
    root = etree.fromstring(change(ChangeRequestCode.GENERIC_SUBSTITUTION, requested=(GENERIC,)))
    assert root.tag == "Message"
    assert root.nsmap == {}
    assert root.get("TransactionDomain") == "SCRIPT"
    assert root.get("TransactionVersion") == "20170715"
    assert [child.tag for child in root.iterfind("Header/*")] == [
        "To",
        "From",
        "MessageID",
        "RelatesToMessageID",
        "SentTime",
        "SenderSoftware",
        "RxReferenceNumber",
        "PrescriberOrderNumber",
    ]
    assert root.findtext("Header/SentTime") == "2025-01-20T14:30:05Z"
    assert [child.tag for child in root.iterfind("Body/RxChangeRequest/*")] == [
        "MessageRequestCode",
        "Patient",
        "Pharmacy",
        "Prescriber",
        "MedicationPrescribed",
        "MedicationRequested",
    ]


def test_message_id_is_the_callers_so_a_redelivery_is_the_same_message() -> None:
    first = change(ChangeRequestCode.SCRIPT_CLARIFICATION)
    again = change(ChangeRequestCode.SCRIPT_CLARIFICATION)
    assert first == again
    assert parse_message(again).header.message_id == "HUB-OUT-0001"
    other = rx_change_request(
        stored(),
        ChangeRequestCode.SCRIPT_CLARIFICATION,
        message_id="HUB-OUT-0002",
        sent_time=SENT,
        software=HUB,
    )
    assert parse_message(other).header.message_id == "HUB-OUT-0002"


def test_sent_time_in_another_zone_is_sent_in_utc() -> None:
    local = SENT.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    data = rx_change_request(
        stored(),
        ChangeRequestCode.SCRIPT_CLARIFICATION,
        message_id="HUB-OUT-0001",
        sent_time=local,
        software=HUB,
    )
    assert etree.fromstring(data).findtext("Header/SentTime") == "2025-01-20T14:30:05Z"


def test_pharmacy_party_without_qualifier_is_sent_as_p() -> None:
    original = stored(pharmacy_party=Party(None, "1234567"))
    data = rx_change_request(
        original,
        ChangeRequestCode.SCRIPT_CLARIFICATION,
        message_id="M1",
        sent_time=SENT,
        software=HUB,
    )
    assert parse_message(data).header.from_ == Party("P", "1234567")


def _every_builder() -> dict[str, Callable[[dt.datetime], bytes]]:
    """Each outbound builder, about a prescription whose pharmacy party has no qualifier, as
    a function of the time it is sent."""
    original = stored(pharmacy_party=Party(None, "1234567"))
    cancel = dataclasses.replace(cancel_header(), to=Party(None, "1234567"))
    line = MedicationLine.of(original.medication)
    common: dict[str, Any] = {"message_id": "HUB-OUT-0001", "software": HUB}
    clarify = ChangeRequestCode.SCRIPT_CLARIFICATION
    approve = CancelRxResponse.approve()
    return {
        "RxChangeRequest": lambda at: rx_change_request(original, clarify, sent_time=at, **common),
        "RxRenewalRequest": lambda at: rx_renewal_request(original, line, sent_time=at, **common),
        "RxFill": lambda at: rx_fill(original, "NotDispensed", None, sent_time=at, **common),
        "CancelRxResponse": lambda at: cancel_rx_response(
            cancel, approve, sent_time=at, rx_reference_number="RX-000123", **common
        ),
    }


@pytest.mark.parametrize(
    ("transaction", "relates_to"),
    [
        ("RxChangeRequest", "NEWRX-0001"),
        ("RxRenewalRequest", None),
        ("RxFill", "NEWRX-0001"),
        ("CancelRxResponse", "CANCEL-0001"),
    ],
)
def test_every_message_goes_back_from_the_pharmacy_as_p_in_utc(
    transaction: str, relates_to: str | None
) -> None:
    local = SENT.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    message = parse_message(_every_builder()[transaction](local))
    assert message.transaction == transaction
    assert message.header == expected_header(relates_to)


# --- RxRenewalRequest -----------------------------------------------------------------------


def test_renewal_request_round_trips() -> None:
    original = stored()
    dispensed = MedicationLine.of(
        original.medication, last_fill_date=dt.date(2025, 1, 16), pharmacy_requested_refills=3
    )
    data = rx_renewal_request(
        original, dispensed, message_id="HUB-OUT-0001", sent_time=SENT, software=HUB
    )
    message = parse_message(data)
    assert message.transaction == "RxRenewalRequest"
    assert message.header == expected_header(relates_to=None)
    assert message.body == RxRenewalRequest(
        patient=original.patient,
        pharmacy=original.pharmacy,
        prescriber=original.prescriber,
        medication_dispensed=dispensed,
        medication_prescribed=original.medication,
    )


def test_renewal_request_is_refused_when_the_newrx_prohibited_it() -> None:
    prohibited = parse_message(
        newrx_xml(append={"Body/NewRx": "<ProhibitRenewalRequest>true</ProhibitRenewalRequest>"})
    ).body
    assert isinstance(prohibited, NewRx)
    assert prohibited.prohibit_renewal_request is True  # the NewRx value object carries it
    original = stored(prohibit_renewal_request=True)
    with pytest.raises(RenewalProhibitedError):
        rx_renewal_request(
            original,
            MedicationLine.of(original.medication),
            message_id="HUB-OUT-0001",
            sent_time=SENT,
            software=HUB,
        )
    allowed = stored(prohibit_renewal_request=False)
    data = rx_renewal_request(
        allowed, MedicationLine.of(allowed.medication), message_id="M", sent_time=SENT, software=HUB
    )
    assert parse_message(data).transaction == "RxRenewalRequest"


# --- CancelRxResponse -----------------------------------------------------------------------


def cancel_header() -> Header:
    """The header of a CancelRx as the intake would have parsed it."""
    return Header(
        to=Party("P", "1234567"),
        from_=Party("D", "9990001"),
        message_id="CANCEL-0001",
        sent_time=SENT - dt.timedelta(hours=1),
        sender_software=SenderSoftware("ExampleEHR", "ExampleEHR eRx", "1.0"),
        prescriber_order_number="ORD-NEWRX-0001",
    )


@pytest.mark.parametrize(
    "response",
    [
        CancelRxResponse.approve(),
        CancelRxResponse.approve("Cancelled before filling"),
        CancelRxResponse.deny("AH"),
        CancelRxResponse.deny("AJ", "AP", reason="Half the tablets were picked up"),
        *(CancelRxResponse.deny(code) for code in CANCEL_DENIAL_REASONS),
    ],
)
def test_cancel_response_round_trips(response: CancelRxResponse) -> None:
    data = cancel_rx_response(
        cancel_header(),
        response,
        message_id="HUB-OUT-0001",
        sent_time=SENT,
        software=HUB,
        rx_reference_number="RX-000123",
    )
    message = parse_message(data)
    assert message.transaction == "CancelRxResponse"
    assert message.header == expected_header(relates_to="CANCEL-0001")
    assert message.body == response


def test_cancel_response_refuses_codes_outside_the_list() -> None:
    with pytest.raises(ValueError, match="1 to 10"):
        CancelRxResponse.deny()
    with pytest.raises(ValueError, match="unknown"):
        CancelRxResponse.deny("ZZ")
    with pytest.raises(ValueError, match="approval"):
        CancelRxResponse(approved=True, reason_codes=("AH",))


def test_cancel_response_free_text_is_shortened() -> None:
    long = "Picked up " + "x" * 200
    data = cancel_rx_response(
        cancel_header(),
        CancelRxResponse.deny("AH", reason=long),
        message_id="M",
        sent_time=SENT,
        software=HUB,
    )
    body = parse_message(data).body
    assert isinstance(body, CancelRxResponse)
    assert body.text is not None
    assert len(body.text) == RESPONSE_TEXT_MAX
    assert body.text.endswith("...")


def test_inbound_cancel_response_with_unknown_reason_is_rejected() -> None:
    data = cancel_rx_response(
        cancel_header(), CancelRxResponse.deny("AH"), message_id="M", sent_time=SENT, software=HUB
    )
    with pytest.raises(ScriptRejection) as caught:
        parse_message(
            edit(data, replace={"Body/CancelRxResponse/Response/Denied/ReasonCode": "QQ"})
        )
    assert caught.value.description_code == "2000"


# --- hostile values -------------------------------------------------------------------------


def with_patient_name(name: Name) -> OriginalPrescription:
    original = stored()
    return dataclasses.replace(original, patient=dataclasses.replace(original.patient, name=name))


def test_accented_names_are_transliterated_to_ascii() -> None:
    original = with_patient_name(Name("Müller-Lüdenscheidt", "Zoë"))
    data = rx_change_request(
        original,
        ChangeRequestCode.SCRIPT_CLARIFICATION,
        message_id="M",
        sent_time=SENT,
        software=HUB,
    )
    assert data.isascii()
    body = parse_message(data).body
    assert isinstance(body, RxChangeRequest)
    assert body.patient.name == Name("Muller-Ludenscheidt", "Zoe")


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        (Name("李", "ALEX"), "not printable ASCII"),
        (Name("TEST\x07PATIENT", "ALEX"), "not printable ASCII"),
        (Name("X" * 36, "ALEX"), "longer than 35"),
    ],
)
def test_names_that_cannot_be_sent_as_written_are_refused(name: Name, detail: str) -> None:
    with pytest.raises(OutboundError, match=detail) as caught:
        rx_change_request(
            with_patient_name(name),
            ChangeRequestCode.SCRIPT_CLARIFICATION,
            message_id="M",
            sent_time=SENT,
            software=HUB,
        )
    assert caught.value.xpath == "/Message/Body/RxChangeRequest/Patient/HumanPatient/Name/LastName"
    assert "李" not in str(caught.value)  # the value is never quoted


def test_markup_in_text_is_escaped() -> None:
    original = with_patient_name(Name("O'BRIEN & <SONS>", "ALEX"))
    data = rx_change_request(
        original,
        ChangeRequestCode.SCRIPT_CLARIFICATION,
        message_id="M",
        sent_time=SENT,
        software=HUB,
    )
    assert b"&amp; &lt;SONS&gt;" in data
    body = parse_message(data).body
    assert isinstance(body, RxChangeRequest)
    assert body.patient.name == Name("O'BRIEN & <SONS>", "ALEX")


def test_over_long_note_is_shortened_but_over_long_directions_are_refused() -> None:
    original = stored()
    medication: MedicationPrescribed = dataclasses.replace(
        original.medication, note="Brand preferred. " * 20
    )
    data = rx_change_request(
        dataclasses.replace(original, medication=medication),
        ChangeRequestCode.SCRIPT_CLARIFICATION,
        message_id="M",
        sent_time=SENT,
        software=HUB,
    )
    body = parse_message(data).body
    assert isinstance(body, RxChangeRequest)
    assert body.medication_prescribed.note is not None
    assert len(body.medication_prescribed.note) == 210
    long_sig = dataclasses.replace(GENERIC, sig_text="Take 1 tablet. " * 80)
    with pytest.raises(OutboundError, match="longer than 1000") as caught:
        change(ChangeRequestCode.GENERIC_SUBSTITUTION, requested=(long_sig,))
    assert caught.value.xpath.endswith("/MedicationRequested[1]/Sig/SigText")


def plain_request() -> RxChangeRequest:
    original = stored()
    return RxChangeRequest(
        request_code=ChangeRequestCode.SCRIPT_CLARIFICATION,
        patient=original.patient,
        pharmacy=original.pharmacy,
        prescriber=original.prescriber,
        medication_prescribed=original.medication,
    )


@pytest.mark.parametrize("message_id", ["HUB-ÜBER-1", "HUB\n1", "HUB 李"])
def test_identifiers_are_never_transliterated_but_refused(message_id: str) -> None:
    header = dataclasses.replace(expected_header(None), message_id=message_id)
    with pytest.raises(OutboundError, match="not printable ASCII") as caught:
        build_rx_change_request(header, plain_request())
    assert caught.value.xpath == "/Message/Header/MessageID"


def test_patient_identifier_with_accent_is_refused() -> None:
    request = plain_request()
    patient = dataclasses.replace(
        request.patient, identifiers=(("MedicalRecordIdentificationNumberEHR", "MRN-É1"),)
    )
    with pytest.raises(OutboundError) as caught:
        build_rx_change_request(
            expected_header(None), dataclasses.replace(request, patient=patient)
        )
    assert caught.value.xpath.endswith("/Identification/MedicalRecordIdentificationNumberEHR")


def test_patient_identifiers_are_sent_back_as_received() -> None:
    request = plain_request()
    patient = dataclasses.replace(
        request.patient, identifiers=(("MedicalRecordIdentificationNumberEHR", "MRN-0001"),)
    )
    data = build_rx_change_request(
        expected_header(None), dataclasses.replace(request, patient=patient)
    )
    body = parse_message(data).body
    assert isinstance(body, RxChangeRequest)
    assert body.patient == patient


def test_a_signed_header_is_refused() -> None:
    header = dataclasses.replace(
        expected_header(None), digital_signature=DigitalSignature("1.1", indicator=True)
    )
    with pytest.raises(OutboundError, match="does not sign"):
        build_rx_change_request(header, plain_request())


def test_non_human_patient_is_not_sent_yet() -> None:
    original = stored()
    animal = dataclasses.replace(
        original.patient, kind="nonhuman", name=None, gender=None, date_of_birth=None, address=None
    )
    with pytest.raises(OutboundError, match="non-human"):
        rx_change_request(
            dataclasses.replace(original, patient=animal),
            ChangeRequestCode.SCRIPT_CLARIFICATION,
            message_id="M",
            sent_time=SENT,
            software=HUB,
        )
