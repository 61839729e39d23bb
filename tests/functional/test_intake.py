"""``POST /ncpdp/script`` end to end: replies, durable storage, and every kind of bad input."""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest
from lxml import etree
from sqlalchemy import func, select, text

from eprescribe.ncpdp import (
    Error,
    MedicationPrescribed,
    NewRx,
    OrderDetails,
    Patient,
    Prescriber,
    Status,
    Verify,
    from_json,
    parse_message,
)
from eprescribe.ncpdp.message import SCRIPT_NAMESPACE
from server.audit.models import AuditEvent
from server.prescriptions.models import InboundMessage, Prescription, PrescriptionTransition
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import (
    FIXTURES,
    edit,
    newrx_tree,
    newrx_xml,
    stored_samples,
    to_bytes,
    veterinarian_without_npi,
)


async def _count(hub: Hub, model: type) -> int:
    async with hub.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _ready(hub: Hub) -> str:
    await hub.pharmacy()
    return await hub.sender_token()


def _error(reply: bytes) -> Error:
    message = parse_message(reply)
    assert message.transaction == "Error", reply
    assert isinstance(message.body, Error)
    return message.body


async def test_newrx_is_stored_then_answered_with_status(hub: Hub) -> None:
    token = await _ready(hub)
    message_id = uuid.uuid4().hex
    body = newrx_xml(message_id=message_id)
    response = await post_script(hub, body, token)
    assert response.status == 200
    assert response.content_type == "application/xml"
    reply = parse_message(await response.read())
    assert reply.transaction == "Status"
    assert isinstance(reply.body, Status)
    assert reply.body.code == "000"
    assert reply.header.relates_to_message_id == message_id
    assert reply.header.message_id != message_id
    assert (reply.header.to.qualifier, reply.header.to.value) == ("D", "9990001")
    assert (reply.header.from_.qualifier, reply.header.from_.value) == ("P", "1234567")
    assert reply.header.sender_software.product == "Telepharm Hub"

    async with hub.db.sessions() as session:
        stored = (await session.scalars(select(InboundMessage))).one()
        rx = (await session.scalars(select(Prescription))).one()
        history = (await session.scalars(select(PrescriptionTransition))).all()
        audit = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "prescription.receive")
            )
        ).one()
    assert stored.raw == body
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert (stored.message_id, stored.sender, stored.transaction) == (
        message_id,
        "D:9990001",
        "NewRx",
    )
    assert rx.state == "received"
    assert rx.message_id == message_id
    assert rx.inbound_message_id == stored.id
    assert rx.patient["name"]["last"] == "TESTPATIENT"
    assert rx.medication["quantity"]["value"] == "60"
    assert [(t.from_state, t.to_state, t.actor) for t in history] == [
        (None, "received", f"client:{stored.sender_client_id}")
    ]
    assert audit.resource_id == str(rx.id)
    assert audit.pharmacy_id == rx.pharmacy_id
    assert "TESTPATIENT" not in str(audit.detail)


async def test_stored_values_read_back_as_the_message_parsed(hub: Hub) -> None:
    """What the JSON columns hold (JSONB on PostgreSQL) gives back the parsed value objects."""
    token = await _ready(hub)
    sent = {}
    for document in stored_samples().values():
        message_id = uuid.uuid4().hex
        body = edit(document, replace={"Header/MessageID": message_id})
        reply = parse_message(await (await post_script(hub, body, token)).read())
        assert reply.transaction in ("Status", "Verify")
        sent[message_id] = parse_message(body)
    async with hub.db.sessions() as session:
        rows = (await session.scalars(select(Prescription))).all()
    assert len(rows) == len(sent)
    for rx in rows:
        message = sent[rx.message_id]
        assert isinstance(message.body, NewRx)
        assert from_json(Patient, rx.patient) == message.body.patient
        assert from_json(Prescriber, rx.prescriber) == message.body.prescriber
        assert from_json(MedicationPrescribed, rx.medication) == message.body.medication
        assert from_json(OrderDetails, rx.details) == OrderDetails.of(message.header, message.body)


async def test_return_receipt_gets_verify(hub: Hub) -> None:
    token = await _ready(hub)
    message_id = uuid.uuid4().hex
    response = await post_script(hub, newrx_xml(message_id=message_id, return_receipt=True), token)
    reply = parse_message(await response.read())
    assert reply.transaction == "Verify"
    assert isinstance(reply.body, Verify)
    assert reply.header.relates_to_message_id == message_id


async def test_duplicate_message_id_is_220_and_stores_nothing_new(hub: Hub) -> None:
    token = await _ready(hub)
    body = newrx_xml(message_id="DUP-1")
    assert b"<Status>" in await (await post_script(hub, body, token)).read()
    other_body = newrx_xml(message_id="DUP-1", quantity="30")
    error = _error(await (await post_script(hub, other_body, token)).read())
    assert (error.code, error.description_codes) == ("900", ("220",))
    assert await _count(hub, InboundMessage) == 1
    assert await _count(hub, Prescription) == 1
    assert await _count(hub, PrescriptionTransition) == 1
    # another client may use the same MessageID: duplicates are per sender
    other = await hub.sender_token()
    assert b"<Status>" in await (await post_script(hub, body, other)).read()
    assert await _count(hub, InboundMessage) == 2


async def test_unknown_receiving_pharmacy_is_1000(hub: Hub) -> None:
    token = await _ready(hub)
    error = _error(await (await post_script(hub, newrx_xml(to="7777777"), token)).read())
    assert (error.code, error.description_codes) == ("900", ("1000",))
    assert error.description
    assert error.description.endswith("/Message/Header/To")
    assert await _count(hub, InboundMessage) == 0


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Message><Header><To Qualifier="P">1234567</To><From Qualifier="D">1</From>
<MessageID>&xxe;</MessageID></Header></Message>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><Message>&lol3;</Message>"""


def _unsupported_transaction() -> bytes:
    root = newrx_tree()
    body = root.find("Body/NewRx")
    assert body is not None
    body.tag = "Resupply"  # a transaction this hub does not receive
    return to_bytes(root)


BAD_INPUTS: dict[str, tuple[bytes, str, str | None]] = {
    "malformed XML": (b"<Message><Header></Message>", "500", None),
    "XXE": (XXE, "500", None),
    "billion laughs": (LAUGHS, "500", None),
    "empty body": (b"", "500", None),
    "unsupported transaction": (_unsupported_transaction(), "4040", "/Message/Body/Resupply"),
    "missing Patient": (newrx_xml(omit=["Body/NewRx/Patient"]), "3000", "/Message/Body/NewRx"),
    "missing Prescriber": (newrx_xml(omit=["Body/NewRx/Prescriber"]), "3000", "Prescriber"),
    "missing MedicationPrescribed": (
        newrx_xml(omit=["Body/NewRx/MedicationPrescribed"]),
        "3000",
        "MedicationPrescribed",
    ),
    "invalid date": (
        newrx_xml(replace={"Body/NewRx/MedicationPrescribed/WrittenDate/Date": "2025-02-30"}),
        "3000",
        "/Message/Body/NewRx/MedicationPrescribed/WrittenDate/Date",
    ),
    "non-numeric quantity": (
        newrx_xml(replace={"Body/NewRx/MedicationPrescribed/Quantity/Value": "thirty"}),
        "3000",
        "/Message/Body/NewRx/MedicationPrescribed/Quantity/Value",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
async def test_bad_input_is_a_script_error_and_stores_nothing(hub: Hub, case: str) -> None:
    token = await _ready(hub)
    body, description_code, xpath = BAD_INPUTS[case]
    response = await post_script(hub, body, token)
    assert response.status == 200
    error = _error(await response.read())
    assert (error.code, error.description_codes) == ("900", (description_code,)), error.description
    if xpath:
        assert error.description
        assert xpath in error.description
    assert await _count(hub, InboundMessage) == 0
    assert await _count(hub, Prescription) == 0


def _prefixed(document: bytes) -> bytes:
    """``document`` with every element under an ``ns:`` prefix for the SCRIPT namespace."""
    root = etree.fromstring(document)
    for el in root.iter():
        el.tag = f"{{{SCRIPT_NAMESPACE}}}{el.tag}"
    etree.cleanup_namespaces(root, top_nsmap={"ns": SCRIPT_NAMESPACE})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


REAL_WORLD = {
    "veterinarian without NPI": veterinarian_without_npi(),
    "partial pharmacy address": newrx_xml(
        omit=["Body/NewRx/Pharmacy/Address/AddressLine1", "Body/NewRx/Pharmacy/Address/CountryCode"]
    ),
    "no qualifiers": newrx_xml(omit=["Header/To/@Qualifier", "Header/From/@Qualifier"]),
    "namespace prefix": newrx_xml(),  # prefixed below
}


@pytest.mark.parametrize("case", sorted(REAL_WORLD))
async def test_messages_the_standard_allows_are_accepted(hub: Hub, case: str) -> None:
    token = await _ready(hub)
    message_id = uuid.uuid4().hex
    body = edit(REAL_WORLD[case], replace={"Header/MessageID": message_id})
    if case == "namespace prefix":
        body = _prefixed(body)
    reply_bytes = await (await post_script(hub, body, token)).read()
    reply = parse_message(reply_bytes)
    assert isinstance(reply.body, Status), reply_bytes
    assert reply.header.relates_to_message_id == message_id
    expected = (None, None) if case == "no qualifiers" else ("D", "P")
    assert (reply.header.to.qualifier, reply.header.from_.qualifier) == expected
    async with hub.db.sessions() as session:
        stored = (await session.scalars(select(InboundMessage))).one()
    assert stored.raw == body
    assert stored.sender == (":9990001" if case == "no qualifiers" else "D:9990001")


async def test_a_non_ascii_message_id_is_refused_not_echoed(hub: Hub) -> None:
    token = await _ready(hub)
    body = newrx_xml(message_id="MSG-\u00e9t\u00e9")
    reply_bytes = await (await post_script(hub, body, token)).read()
    assert reply_bytes.isascii()
    reply = parse_message(reply_bytes)
    error = _error(reply_bytes)
    assert (error.code, error.description_codes) == ("900", ("3000",))
    assert error.description is not None
    assert error.description.endswith("/Message/Header/MessageID")
    assert reply.header.relates_to_message_id is None
    assert (reply.header.to.qualifier, reply.header.to.value) == ("D", "9990001")
    assert await _count(hub, InboundMessage) == 0


async def test_an_error_in_a_prefixed_message_relates_to_it(hub: Hub) -> None:
    token = await _ready(hub)
    body = _prefixed(newrx_xml(message_id="NS-ERR-1", omit=["Body/NewRx/Patient"]))
    reply_bytes = await (await post_script(hub, body, token)).read()
    assert _error(reply_bytes).description_codes == ("3000",)
    assert parse_message(reply_bytes).header.relates_to_message_id == "NS-ERR-1"


async def test_script_10_6_is_answered_with_a_10_6_error(hub: Hub) -> None:
    token = await _ready(hub)
    response = await post_script(hub, (FIXTURES / "newrx_10_6.xml").read_bytes(), token)
    assert response.status == 200
    root = etree.fromstring(await response.read())
    ns = {"s": SCRIPT_NAMESPACE}
    assert (root.tag, root.get("version"), root.get("release")) == (
        f"{{{SCRIPT_NAMESPACE}}}Message", "010", "006"
    )  # fmt: skip
    assert root.findtext("s:Header/s:RelatesToMessageID", namespaces=ns) == "TEST-106-0001"
    assert root.findtext("s:Header/s:To", namespaces=ns) == "9990001"
    assert root.findtext("s:Body/s:Error/s:Code", namespaces=ns) == "900"
    assert await _count(hub, InboundMessage) == 0


async def test_syntax_error_reply_is_addressed_to_the_recognisable_sender(hub: Hub) -> None:
    token = await _ready(hub)
    broken = newrx_xml(message_id="BROKEN-1")[:-40]
    reply = parse_message(await (await post_script(hub, broken, token)).read())
    assert reply.header.relates_to_message_id == "BROKEN-1"
    assert (reply.header.to.qualifier, reply.header.to.value) == ("D", "9990001")


async def test_body_over_one_mib_is_413(hub: Hub) -> None:
    token = await _ready(hub)
    big = io.BytesIO(b"<Message>" + b" " * (1024 * 1024) + b"</Message>")
    response = await post_script(hub, big, token)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert await _count(hub, InboundMessage) == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "application/octet-stream"]
)
async def test_wrong_content_type_is_415(hub: Hub, content_type: str) -> None:
    token = await _ready(hub)
    response = await post_script(hub, newrx_xml(), token, content_type=content_type)
    assert response.status == 415
    assert (await response.json())["code"] == "unsupported_media_type"


async def test_text_xml_with_charset_is_accepted(hub: Hub) -> None:
    token = await _ready(hub)
    response = await post_script(hub, newrx_xml(), token, content_type="text/xml; charset=utf-8")
    assert b"<Status>" in await response.read()


async def test_storage_failure_is_602_and_leaves_no_half_written_rows(hub: Hub) -> None:
    token = await _ready(hub)
    async with hub.db.engine.begin() as conn:  # the last insert of the transaction will fail
        await conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        error = _error(await (await post_script(hub, newrx_xml(), token)).read())
    finally:
        async with hub.db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    assert error.code == "602"
    assert await _count(hub, InboundMessage) == 0
    assert await _count(hub, Prescription) == 0
