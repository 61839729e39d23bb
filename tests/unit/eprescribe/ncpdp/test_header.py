"""Header: every field, schema order, lengths, qualifiers, SentTime and DigitalSignature."""

from __future__ import annotations

import datetime as dt

import pytest

from eprescribe.ncpdp import (
    DigitalSignature,
    Party,
    ScriptRejection,
    SenderSoftware,
    StandardViolationError,
    parse_message,
)
from tests.support.script_samples import FIXTURES, edit, newrx_xml

H = "/Message/Header"


def rejection(document: bytes) -> ScriptRejection:
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    return caught.value


def test_every_header_field_is_read() -> None:
    header = parse_message((FIXTURES / "newrx_full.xml").read_bytes()).header
    assert header.to == Party("P", "1234567")
    assert header.from_ == Party("D", "9990001")
    assert header.message_id == "TEST-FULL-0001"
    assert header.sent_time == dt.datetime(2025, 1, 15, 15, 0, 0, 250000, tzinfo=dt.UTC)
    assert header.sender_software == SenderSoftware("ExampleEHR", "ExampleEHR eRx", "2.3.1")
    assert header.relates_to_message_id is None
    assert header.rx_reference_number == "TEST-RXREF-0001"
    assert header.prescriber_order_number == "TEST-ORD-0001"
    assert header.digital_signature == DigitalSignature(
        version="1.1",
        indicator=None,
        digest_method="SHA-256",
        digest_value="VEVTVC1ESUdFU1Q=",
        signature_value="VEVTVC1TSUdOQVRVUkU=",
        x509_data="VEVTVC1DRVJUSUZJQ0FURQ==",
    )


def test_signature_indicator_form() -> None:
    header = parse_message(newrx_xml(controlled=True)).header
    assert header.digital_signature == DigitalSignature(version="1.1", indicator=True)


def test_signature_indicator_and_parts_are_exclusive() -> None:
    document = newrx_xml(
        controlled=True, append={"Header/DigitalSignature": "<DigestValue>x</DigestValue>"}
    )
    error = rejection(document)
    assert (error.description_code, error.xpath) == ("3000", f"{H}/DigitalSignature")


def test_signature_indicator_must_be_boolean() -> None:
    error = rejection(
        newrx_xml(
            controlled=True, replace={"Header/DigitalSignature/DigitalSignatureIndicator": "Y"}
        )
    )
    assert error.xpath == f"{H}/DigitalSignature/DigitalSignatureIndicator"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-15T10:00:00Z", dt.datetime(2025, 1, 15, 10, tzinfo=dt.UTC)),
        ("2025-01-15T10:00:00", dt.datetime(2025, 1, 15, 10, tzinfo=dt.UTC)),
        ("2025-01-15T12:30:00+02:30", dt.datetime(2025, 1, 15, 10, tzinfo=dt.UTC)),
        ("2025-01-15T10:00:00.5304856Z", dt.datetime(2025, 1, 15, 10, 0, 0, 530485, dt.UTC)),
    ],
)
def test_sent_time_is_aware_utc(text: str, expected: dt.datetime) -> None:
    sent = parse_message(newrx_xml(sent_time=text)).header.sent_time
    assert sent == expected
    assert sent.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text", ["2025-01-15", "2025-02-30T10:00:00Z", "2025-01-15T25:00:00Z", "yesterday"]
)
def test_invalid_sent_time(text: str) -> None:
    error = rejection(newrx_xml(sent_time=text))
    assert (error.description_code, error.xpath) == ("3000", f"{H}/SentTime")


def test_message_id_longer_than_35_is_rejected() -> None:
    error = rejection(newrx_xml(message_id="M" * 36))
    assert isinstance(error, StandardViolationError)
    assert error.xpath == f"{H}/MessageID"
    assert parse_message(newrx_xml(message_id="M" * 35)).header.message_id == "M" * 35


def test_message_id_must_not_be_empty() -> None:
    assert rejection(newrx_xml(replace={"Header/MessageID": "  "})).xpath == f"{H}/MessageID"


@pytest.mark.parametrize("qualifier", ["P", "C", "M", "D", "CF", "ZZZ", "PY", "DIRECT", "REMS"])
def test_known_qualifiers_are_accepted(qualifier: str) -> None:
    document = newrx_xml(replace={"Header/From/@Qualifier": qualifier})
    assert parse_message(document).header.from_.qualifier == qualifier


@pytest.mark.parametrize("qualifier", ["X", "p", "", "PHARMACY"])
def test_unknown_qualifier_is_rejected_at_the_attribute(qualifier: str) -> None:
    error = rejection(newrx_xml(replace={"Header/To/@Qualifier": qualifier}))
    assert (error.description_code, error.xpath) == ("3000", f"{H}/To/@Qualifier")


@pytest.mark.parametrize("name", ["To", "From"])
def test_qualifier_is_optional(name: str) -> None:
    header = parse_message(newrx_xml(omit=[f"Header/{name}/@Qualifier"])).header
    party = header.to if name == "To" else header.from_
    assert party.qualifier is None
    assert party.value == ("1234567" if name == "To" else "9990001")
    assert party.text == f":{party.value}"


@pytest.mark.parametrize(
    ("path", "value"),
    [("Header/MessageID", "MSG-\u00e9t\u00e9"), ("Header/From", "9990001-\u00f1"),
     ("Header/To", "\u0661\u0662\u0663")],
    ids=["MessageID", "From", "To"],
)  # fmt: skip
def test_echoed_identifiers_must_be_ascii(path: str, value: str) -> None:
    """A reply echoes MessageID and From/To: non-ASCII there could only make it invalid."""
    error = rejection(newrx_xml(replace={path: value}))
    assert (error.description_code, error.xpath) == ("3000", f"/Message/{path}")
    assert "ASCII" in error.detail


@pytest.mark.parametrize("name", ["To", "From", "MessageID", "SentTime", "SenderSoftware"], ids=str)
def test_required_header_elements(name: str) -> None:
    error = rejection(newrx_xml(omit=[f"Header/{name}"]))
    assert (error.description_code, error.xpath) == ("3000", f"{H}/{name}")


def test_out_of_order_header_element_is_reported_where_it_stands() -> None:
    document = edit(
        newrx_xml(),
        omit=["Header/PrescriberOrderNumber"],
        append={"Header": "<RelatesToMessageID>X-1</RelatesToMessageID>"},
    )
    error = rejection(document)
    assert (error.detail, error.xpath) == ("element out of order", f"{H}/RelatesToMessageID")


def test_unexpected_header_element() -> None:
    error = rejection(newrx_xml(append={"Header": "<Priority>high</Priority>"}))
    assert (error.detail, error.xpath) == ("unexpected element", f"{H}/Priority")


def test_repeated_header_element_is_indexed() -> None:
    error = rejection(
        newrx_xml(append={"Header": "<PrescriberOrderNumber>2</PrescriberOrderNumber>"})
    )
    assert error.xpath == f"{H}/PrescriberOrderNumber[2]"


def test_sender_software_fields_are_an_35() -> None:
    error = rejection(newrx_xml(replace={"Header/SenderSoftware/SenderSoftwareProduct": "P" * 36}))
    assert error.xpath == f"{H}/SenderSoftware/SenderSoftwareProduct"


def test_unmodelled_header_blocks_are_accepted_in_place() -> None:
    document = edit(
        newrx_xml(),
        omit=["Header/SenderSoftware", "Header/PrescriberOrderNumber"],
        append={
            "Header": ("<Security><UsernameToken><Username>u</Username></UsernameToken></Security>")
        },
    )
    # Security must come before SenderSoftware: re-add SenderSoftware after it.
    document = edit(
        document,
        append={
            "Header": "<SenderSoftware><SenderSoftwareDeveloper>D</SenderSoftwareDeveloper>"
            "<SenderSoftwareProduct>P</SenderSoftwareProduct>"
            "<SenderSoftwareVersionRelease>1</SenderSoftwareVersionRelease></SenderSoftware>"
        },
    )
    document = edit(document, append={"Header": "<TertiaryIdentifier>T</TertiaryIdentifier>"})
    header = parse_message(document).header
    assert header.sender_software == SenderSoftware("D", "P", "1")


def test_control_characters_in_identifiers_are_rejected() -> None:
    error = rejection(newrx_xml(message_id="A\tB"))
    assert (error.detail, error.xpath) == ("control characters not allowed", f"{H}/MessageID")


def test_party_value_is_trimmed() -> None:
    document = newrx_xml(replace={"Header/To": "  1234567\n"})
    assert parse_message(document).header.to == Party("P", "1234567")
