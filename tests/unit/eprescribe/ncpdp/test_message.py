"""The envelope, Body, the reply transactions, and the property: only rejections escape."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from eprescribe.ncpdp import (
    Error,
    NewRx,
    ScriptRejection,
    StandardViolationError,
    Status,
    UnsupportedTransactionError,
    Verify,
    XmlSyntaxError,
    parse_message,
)
from eprescribe.ncpdp.errors import Script106Error
from eprescribe.ncpdp.message import SCRIPT_NAMESPACE
from tests.support.script_samples import FIXTURES, edit, newrx_xml

HEADER = """<Header><To Qualifier="D">9990001</To><From Qualifier="P">1234567</From>
<MessageID>HUB-1</MessageID>{relates}<SentTime>2025-01-15T10:00:01Z</SentTime>
<SenderSoftware><SenderSoftwareDeveloper>Hub</SenderSoftwareDeveloper>
<SenderSoftwareProduct>Hub</SenderSoftwareProduct>
<SenderSoftwareVersionRelease>1</SenderSoftwareVersionRelease></SenderSoftware></Header>"""
ATTRIBUTES = {
    "DatatypesVersion": "20170715",
    "TransportVersion": "20170715",
    "TransactionDomain": "SCRIPT",
    "TransactionVersion": "20170715",
    "StructuresVersion": "20170715",
    "ECLVersion": "20170715",
}


def message(body: str, relates: str | None = "REQ-1", **attributes: str) -> bytes:
    attrs = " ".join(f'{k}="{v}"' for k, v in {**ATTRIBUTES, **attributes}.items())
    related = f"<RelatesToMessageID>{relates}</RelatesToMessageID>" if relates else ""
    header = HEADER.format(relates=related)
    return f"<Message {attrs}>{header}<Body>{body}</Body></Message>".encode()


def rejection(document: bytes) -> ScriptRejection:
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    return caught.value


# --- envelope -------------------------------------------------------------------------------


def test_newrx_message() -> None:
    parsed = parse_message(newrx_xml())
    assert (parsed.version, parsed.transaction) == ("20170715", "NewRx")
    assert isinstance(parsed.body, NewRx)


@pytest.mark.parametrize("version", ["20170714", "20170715", "20170719"])
def test_2017071_versions_are_accepted(version: str) -> None:
    document = message("<Status><Code>000</Code></Status>", **dict.fromkeys(
        ["DatatypesVersion", "TransportVersion", "TransactionVersion", "StructuresVersion",
         "ECLVersion"], version))  # fmt: skip
    assert parse_message(document).version == version


def test_script_10_6_is_unsupported() -> None:
    error = rejection((FIXTURES / "newrx_10_6.xml").read_bytes())
    assert isinstance(error, UnsupportedTransactionError)
    assert (error.description_code, error.xpath) == ("4040", "/Message")


@pytest.mark.parametrize(
    "namespace", ["http://www.surescripts.com/messaging", "urn:example:anything"]
)
def test_any_namespace_is_unsupported(namespace: str) -> None:
    document = newrx_xml().replace(b"<Message ", f'<Message xmlns="{namespace}" '.encode(), 1)
    assert rejection(document).description_code == "4040"


def _prefixed(document: bytes, prefix: str = "ns") -> bytes:
    """``document`` with every element in the SCRIPT namespace under ``prefix``."""
    root = etree.fromstring(document)
    nsmap = {prefix: SCRIPT_NAMESPACE}
    tree = etree.Element(f"{{{SCRIPT_NAMESPACE}}}{root.tag}", root.attrib, nsmap=nsmap)
    tree.extend(root)
    for el in tree.iter():
        if isinstance(el.tag, str) and not el.tag.startswith("{"):
            el.tag = f"{{{SCRIPT_NAMESPACE}}}{el.tag}"
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("prefix", ["ns", "script", None])
def test_2017071_in_the_script_namespace_is_read_as_without_it(prefix: str | None) -> None:
    plain = newrx_xml()
    if prefix is None:
        document = plain.replace(b"<Message ", f'<Message xmlns="{SCRIPT_NAMESPACE}" '.encode(), 1)
    else:
        document = _prefixed(plain, prefix)
        assert f"<{prefix}:Header>".encode() in document
    assert parse_message(document) == parse_message(plain)


def test_errors_in_a_prefixed_message_name_local_paths() -> None:
    document = _prefixed(newrx_xml(replace={"Body/NewRx/MedicationPrescribed/Quantity/Value": "x"}))
    error = rejection(document)
    assert (error.description_code, error.xpath) == (
        "3000", "/Message/Body/NewRx/MedicationPrescribed/Quantity/Value"
    )  # fmt: skip


def test_foreign_elements_in_a_prefixed_message_are_still_unexpected() -> None:
    document = _prefixed(newrx_xml()).replace(
        b"</ns:NewRx>", b'<x:Extra xmlns:x="urn:example:other">1</x:Extra></ns:NewRx>'
    )
    error = rejection(document)
    assert (error.description_code, error.xpath) == ("3000", "/Message/Body/NewRx/Extra")


def test_script_10_6_carries_its_namespace() -> None:
    error = rejection((FIXTURES / "newrx_10_6.xml").read_bytes())
    assert isinstance(error, Script106Error)
    assert error.namespace == SCRIPT_NAMESPACE


def test_prefixed_namespace_declarations_alone_are_fine() -> None:
    document = newrx_xml().replace(
        b"<Message ", b'<Message xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ', 1
    )
    assert parse_message(document).transaction == "NewRx"


@pytest.mark.parametrize("version", ["20230111", "010", "2017071", "201707150"])
def test_other_transaction_versions_are_unsupported(version: str) -> None:
    error = rejection(newrx_xml(replace={"@TransactionVersion": version}))
    assert isinstance(error, UnsupportedTransactionError)
    assert error.xpath == "/Message/@TransactionVersion"


def test_other_transaction_domain_is_unsupported() -> None:
    error = rejection(newrx_xml(replace={"@TransactionDomain": "TELECOM"}))
    assert (error.description_code, error.xpath) == ("4040", "/Message/@TransactionDomain")


@pytest.mark.parametrize(
    "attribute",
    ["DatatypesVersion", "TransportVersion", "TransactionDomain", "TransactionVersion",
     "StructuresVersion", "ECLVersion"],
)  # fmt: skip
def test_missing_version_attribute_is_a_standard_violation(attribute: str) -> None:
    error = rejection(newrx_xml(omit=[f"@{attribute}"]))
    assert isinstance(error, StandardViolationError)
    assert error.xpath == f"/Message/@{attribute}"


def test_mismatched_secondary_version_is_a_standard_violation() -> None:
    error = rejection(newrx_xml(replace={"@ECLVersion": "20230111"}))
    assert (error.description_code, error.xpath) == ("3000", "/Message/@ECLVersion")


def test_root_must_be_message() -> None:
    assert rejection(b"<Envelope/>").xpath == "/Envelope"


def test_header_and_body_are_required() -> None:
    assert rejection(newrx_xml(omit=["Body"])).xpath == "/Message/Body"
    assert rejection(newrx_xml(omit=["Header"])).xpath == "/Message/Header"


def test_body_after_body_is_indexed() -> None:
    error = rejection(
        edit(newrx_xml(), append={"": "<Body><Status><Code>000</Code></Status></Body>"})
    )
    assert error.xpath == "/Message/Body[2]"


# --- Body -----------------------------------------------------------------------------------


def test_two_transactions_in_body() -> None:
    error = rejection(newrx_xml(append={"Body": "<Status><Code>000</Code></Status>"}))
    assert (error.description_code, error.xpath) == ("3000", "/Message/Body/Status")


def test_two_newrx_in_body_are_indexed() -> None:
    root = etree.fromstring(newrx_xml())
    body = root.find("Body")
    assert body is not None
    body.append(etree.fromstring(etree.tostring(body[0])))
    assert rejection(etree.tostring(root)).xpath == "/Message/Body/NewRx[2]"


def test_empty_body() -> None:
    error = rejection(message(""))
    assert (error.description_code, error.xpath) == ("3000", "/Message/Body")


@pytest.mark.parametrize("name", ["Resupply", "DrugAdministration", "SomethingNew"])
def test_other_transactions_are_returned_without_body(name: str) -> None:
    parsed = parse_message(message(f"<{name}><Anything/></{name}>", relates=None))
    assert (parsed.transaction, parsed.body) == (name, None)


# --- Status, Error, Verify ------------------------------------------------------------------


def test_status() -> None:
    body = "<Status><Code>000</Code><DescriptionCode>008</DescriptionCode>"
    body += "<Description>ok</Description></Status>"
    parsed = parse_message(message(body))
    assert parsed.body == Status("000", ("008",), "ok")
    assert parsed.header.relates_to_message_id == "REQ-1"


def test_status_code_list() -> None:
    error = rejection(message("<Status><Code>999</Code></Status>"))
    assert error.xpath == "/Message/Body/Status/Code"


def test_status_description_is_an_70() -> None:
    error = rejection(
        message(f"<Status><Code>000</Code><Description>{'d' * 71}</Description></Status>")
    )
    assert error.xpath == "/Message/Body/Status/Description"


def test_error() -> None:
    body = "<Error><Code>900</Code><DescriptionCode>3000</DescriptionCode>"
    body += "<Description>bad: /Message/Body</Description></Error>"
    assert parse_message(message(body)).body == Error("900", ("3000",), "bad: /Message/Body")


def test_error_description_code_format() -> None:
    error = rejection(
        message("<Error><Code>900</Code><DescriptionCode>X1</DescriptionCode></Error>")
    )
    assert error.xpath == "/Message/Body/Error/DescriptionCode"


def test_verify() -> None:
    parsed = parse_message(
        message("<Verify><VerifyStatus><Code>010</Code></VerifyStatus></Verify>")
    )
    assert parsed.body == Verify("010")


def test_verify_code_is_fixed() -> None:
    error = rejection(message("<Verify><VerifyStatus><Code>000</Code></VerifyStatus></Verify>"))
    assert error.xpath == "/Message/Body/Verify/VerifyStatus/Code"


def test_error_to_an_unidentifiable_request_may_omit_relates_to() -> None:
    # RelatesToMessageID is required by the implementation guide, but an Error answering a
    # request whose MessageID could not be recovered has nothing to relate to.
    parsed = parse_message(message("<Error><Code>900</Code></Error>", relates=None))
    assert parsed.header.relates_to_message_id is None


# --- property: nothing but rejections -------------------------------------------------------

VALID = (FIXTURES / "newrx_full.xml").read_bytes()
VALID_ELEMENTS = sum(1 for _ in etree.fromstring(VALID).iter())
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_reject(data: bytes) -> None:
    """Parse; any exception other than a rejection fails the test by propagating."""
    outcome: ScriptRejection | None = None
    try:
        parse_message(data)
    except ScriptRejection as caught:
        outcome = caught
    if outcome is not None:
        assert outcome.description_code in {"500", "2000", "3000", "4040"}
        assert outcome.xpath is None or outcome.xpath.startswith("/")


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_only_ever_raise_rejections(data: bytes) -> None:
    parse_or_reject(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The full sample truncated, with flipped bytes, or with an element deleted or doubled."""
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "duplicate", "retext"]))
    if kind == "truncate":
        return VALID[: draw(st.integers(0, len(VALID) - 1))]
    if kind == "flip":
        data = bytearray(VALID)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    root = etree.fromstring(VALID)
    element = list(root.iter())[draw(st.integers(1, VALID_ELEMENTS - 1))]
    parent = element.getparent()
    assert parent is not None
    if kind == "delete":
        parent.remove(element)
    elif kind == "duplicate":
        element.addnext(etree.fromstring(etree.tostring(element)))
    else:
        element.text = draw(st.text(max_size=40).filter(_xml_safe))
    return etree.tostring(root)


def _xml_safe(text: str) -> bool:
    return all(
        ch in "\t\n\r" or (" " <= ch <= "\ud7ff") or ("\ue000" <= ch <= "\ufffd") for ch in text
    )


@FUZZ
@given(mutated())
def test_mutated_messages_only_ever_raise_rejections(data: bytes) -> None:
    parse_or_reject(data)


def test_syntax_rejections_carry_no_xpath() -> None:
    assert rejection(VALID[:100]).xpath is None
    assert isinstance(rejection(VALID[:100]), XmlSyntaxError)


def test_the_package_stays_pure_domain() -> None:
    code = (
        "import sys, eprescribe.ncpdp; "
        "leaks = [m for m in ('aiohttp', 'sqlalchemy') if m in sys.modules]; "
        "assert not leaks, leaks"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
