"""Replies are valid SCRIPT, answer the right party, and survive hostile requests."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from lxml import etree

from eprescribe.ncpdp import (
    ContentInvalidError,
    DuplicateMessageError,
    Error,
    Party,
    ReplyContext,
    ScriptRejection,
    SenderSoftware,
    StandardViolationError,
    Status,
    UnidentifiedError,
    UnsupportedTransactionError,
    Verify,
    XmlSyntaxError,
    build_error,
    build_rejection,
    build_status,
    build_verify,
    parse_message,
    reply_context,
    salvage_reply_context,
    salvage_transaction,
)
from eprescribe.ncpdp.errors import Script106Error
from eprescribe.ncpdp.message import SCRIPT_NAMESPACE
from eprescribe.ncpdp.replies import DESCRIPTION_10_6_MAX, ERROR_DESCRIPTION_MAX, clean_text
from tests.support.script_samples import FIXTURES, newrx_xml

HUB = SenderSoftware("ExampleHub", "TelepharmacyHub", "0.1")
SENT = dt.datetime(2025, 1, 15, 5, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
FALLBACK_TO = Party("ZZZ", "client-42")
FALLBACK_FROM = Party("ZZZ", "TELEPHARM-HUB")


def request_context() -> ReplyContext:
    return reply_context(parse_message(newrx_xml(message_id="REQ-0001")).header)


def test_reply_context_swaps_to_and_from() -> None:
    assert request_context() == ReplyContext(
        to=Party("D", "9990001"), from_=Party("P", "1234567"), relates_to_message_id="REQ-0001"
    )


def test_status_round_trips() -> None:
    reply = build_status(request_context(), message_id="HUB-0001", sent_time=SENT, software=HUB)
    assert reply.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Message ')
    parsed = parse_message(reply)
    assert parsed.transaction == "Status"
    assert parsed.body == Status("000")
    header = parsed.header
    assert (header.to, header.from_) == (Party("D", "9990001"), Party("P", "1234567"))
    assert (header.message_id, header.relates_to_message_id) == ("HUB-0001", "REQ-0001")
    assert header.sender_software == HUB
    assert header.sent_time == dt.datetime(2025, 1, 15, 10, 0, 1, tzinfo=dt.UTC)
    assert b"<SentTime>2025-01-15T10:00:01Z</SentTime>" in reply
    assert parsed.version == "20170715"


def test_sent_time_keeps_milliseconds() -> None:
    sent = dt.datetime(2025, 1, 15, 10, 0, 1, 250000, tzinfo=dt.UTC)
    reply = build_status(request_context(), message_id="HUB-1", sent_time=sent, software=HUB)
    assert b"<SentTime>2025-01-15T10:00:01.250Z</SentTime>" in reply


def test_status_with_code_010_and_description() -> None:
    reply = build_status(
        request_context(),
        message_id="HUB-2",
        sent_time=SENT,
        software=HUB,
        code="010",
        description="accepted\nby the ultimate receiver " + "x" * 100,
    )
    status = parse_message(reply).body
    assert isinstance(status, Status)
    assert status.code == "010"
    assert status.description is not None
    assert status.description.startswith("accepted by the")
    assert len(status.description) == 70


def test_verify_round_trips() -> None:
    reply = build_verify(request_context(), message_id="HUB-3", sent_time=SENT, software=HUB)
    parsed = parse_message(reply)
    assert (parsed.transaction, parsed.body) == ("Verify", Verify("010"))
    assert parsed.header.relates_to_message_id == "REQ-0001"


def test_error_round_trips() -> None:
    reply = build_error(
        request_context(),
        message_id="HUB-4",
        sent_time=SENT,
        software=HUB,
        code="602",
        description_code=None,
        description="Receiver system error",
    )
    assert parse_message(reply).body == Error("602", (), "Receiver system error")


def test_error_description_is_cleaned_and_escaped() -> None:
    reply = build_error(
        request_context(),
        message_id="HUB-5",
        sent_time=SENT,
        software=HUB,
        code="900",
        description_code="3000",
        description="bad <value> & \x00\x07 \ud800 control\tchars: /Message/Body",
    )
    error = parse_message(reply).body
    assert isinstance(error, Error)
    assert error.description == "bad <value> & control chars: /Message/Body"
    assert b"&lt;value&gt; &amp;" in reply


def test_markup_in_parties_is_escaped() -> None:
    ctx = ReplyContext(to=Party("ZZZ", 'a<b>&"c"'), from_=Party("P", "1234567"))
    reply = build_status(ctx, message_id="HUB-6", sent_time=SENT, software=HUB)
    assert parse_message(reply).header.to == Party("ZZZ", 'a<b>&"c"')


@pytest.mark.parametrize(
    ("rejection", "code"),
    [
        (XmlSyntaxError("malformed XML at line 1, column 2 (ERR_X)"), "500"),
        (UnidentifiedError("Receiving pharmacy is not on this hub", "/Message/Header/To"), "1000"),
        (ContentInvalidError("quantity must be greater than zero", "/Message/Body/NewRx"), "2000"),
        (StandardViolationError("required element missing", "/Message/Body/NewRx/Patient"), "3000"),
        (UnsupportedTransactionError("not supported", "/Message/Body/RxFill"), "4040"),
        (DuplicateMessageError("duplicate", "/Message/Header/MessageID"), "220"),
    ],
)
def test_rejections_become_error_900(rejection: ScriptRejection, code: str) -> None:
    reply = build_rejection(
        request_context(), rejection, message_id="HUB-6", sent_time=SENT, software=HUB
    )
    error = parse_message(reply).body
    assert error == Error("900", (code,), rejection.description)


def test_long_rejection_keeps_its_xpath() -> None:
    xpath = "/Message/Body/NewRx/MedicationPrescribed/Sig/Instruction[2]/Dosage/DoseQuantity"
    rejection = StandardViolationError("d" * 2000, xpath)
    reply = build_rejection(
        request_context(), rejection, message_id="HUB-7", sent_time=SENT, software=HUB
    )
    error = parse_message(reply).body
    assert isinstance(error, Error)
    assert error.description is not None
    assert len(error.description) <= ERROR_DESCRIPTION_MAX
    assert error.description.endswith(f"...: {xpath}")


def test_rejection_description_property() -> None:
    assert StandardViolationError("x", "/Message").description == "x: /Message"
    assert XmlSyntaxError("empty message body").description == "empty message body"
    assert str(StandardViolationError("x", "/Message")) == "x: /Message"
    assert (ScriptRejection.code, XmlSyntaxError.code) == ("900", "900")


@pytest.mark.parametrize("message_id", ["", "M" * 36, "A\nB", "a&b"])
def test_invalid_message_id_is_a_programming_error(message_id: str) -> None:
    with pytest.raises(ValueError, match="MessageID"):
        build_status(request_context(), message_id=message_id, sent_time=SENT, software=HUB)


def test_naive_sent_time_is_a_programming_error() -> None:
    naive = dt.datetime(2025, 1, 15, 10, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="aware"):
        build_status(request_context(), message_id="HUB-8", sent_time=naive, software=HUB)


def test_unknown_codes_are_programming_errors() -> None:
    ctx = request_context()
    with pytest.raises(ValueError, match="Status"):
        build_status(ctx, message_id="HUB-9", sent_time=SENT, software=HUB, code="999")
    with pytest.raises(ValueError, match="Error"):
        build_error(
            ctx, message_id="H", sent_time=SENT, software=HUB, code="100", description_code=None,
            description=None,
        )  # fmt: skip
    with pytest.raises(ValueError, match="DescriptionCode"):
        build_error(
            ctx, message_id="H", sent_time=SENT, software=HUB, code="900", description_code="x",
            description=None,
        )  # fmt: skip


# --- salvage --------------------------------------------------------------------------------


def test_salvage_from_broken_but_recognisable_xml() -> None:
    broken = newrx_xml(message_id="BROKEN-1")[:-40]
    ctx = salvage_reply_context(broken, FALLBACK_TO, FALLBACK_FROM)
    assert ctx == ReplyContext(Party("D", "9990001"), Party("P", "1234567"), "BROKEN-1")


def test_salvage_from_namespaced_10_6() -> None:
    document = b"""<Message xmlns="http://www.ncpdp.org/schema/SCRIPT"><Header>
    <To Qualifier = 'P'>1234567</To><From Qualifier="D" >9990001</From>
    <MessageID> OLD-1 </MessageID></Header><Body><NewRx/></Body></Message>"""
    ctx = salvage_reply_context(document, FALLBACK_TO, FALLBACK_FROM)
    assert ctx == ReplyContext(Party("D", "9990001"), Party("P", "1234567"), "OLD-1")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\xff\xfe\x00garbage", b"<To>A &amp; B</To>", b"{}", b"<MessageID></MessageID>"],
)
def test_salvage_falls_back_on_garbage(garbage: bytes) -> None:
    ctx = salvage_reply_context(garbage, FALLBACK_TO, FALLBACK_FROM)
    assert ctx == ReplyContext(FALLBACK_TO, FALLBACK_FROM, None)


@pytest.mark.parametrize(
    "message_id",
    [b"M" * 36, b"A&amp;B", b"A\x01B", b"\xc3\x28", b"A\tB"],
    ids=["too-long", "entity", "control", "bad-utf8", "tab"],
)
def test_salvage_rejects_unsafe_message_ids(message_id: bytes) -> None:
    document = b'<Message><Header><From Qualifier="D">9990001</From><MessageID>'
    document += message_id + b"</MessageID></Header>"
    ctx = salvage_reply_context(document, FALLBACK_TO, FALLBACK_FROM)
    assert ctx.relates_to_message_id is None
    assert ctx.to == Party("D", "9990001")


def test_salvage_rejects_unknown_qualifier() -> None:
    document = b'<Header><From Qualifier="XX">9990001</From><To Qualifier="P">1234567</To>'
    ctx = salvage_reply_context(document, FALLBACK_TO, FALLBACK_FROM)
    assert (ctx.to, ctx.from_) == (FALLBACK_TO, Party("P", "1234567"))


def test_salvage_ignores_the_body_and_anything_past_64_kib() -> None:
    in_body = b'<Header></Header><Body><From Qualifier="D">9990001</From></Body>'
    assert salvage_reply_context(in_body, FALLBACK_TO, FALLBACK_FROM).to == FALLBACK_TO
    late = b"<Message>" + b" " * 70_000 + b'<From Qualifier="D">9990001</From>'
    assert salvage_reply_context(late, FALLBACK_TO, FALLBACK_FROM).to == FALLBACK_TO


def test_salvage_is_fast_on_hostile_input() -> None:
    hostile = b'<From Qualifier="' * 60_000 + b"<MessageID>" * 10_000
    started = time.perf_counter()
    salvage_reply_context(hostile, FALLBACK_TO, FALLBACK_FROM)
    assert time.perf_counter() - started < 1.0


def test_salvaged_context_builds_a_valid_error() -> None:
    broken = newrx_xml(message_id="BROKEN-2")[:-40]
    ctx = salvage_reply_context(broken, FALLBACK_TO, FALLBACK_FROM)
    with pytest.raises(XmlSyntaxError) as caught:
        parse_message(broken)
    reply = build_rejection(ctx, caught.value, message_id="HUB-10", sent_time=SENT, software=HUB)
    parsed = parse_message(reply)
    assert parsed.header.relates_to_message_id == "BROKEN-2"
    assert isinstance(parsed.body, Error)
    assert parsed.body.description_codes == ("500",)


# --- optional qualifiers, ASCII only, namespaces, SCRIPT 10.6 -------------------------------


def test_a_party_without_qualifier_is_answered_without_one() -> None:
    request = parse_message(newrx_xml(omit=["Header/From/@Qualifier"]))
    reply = build_status(reply_context(request.header), message_id="HUB-7", sent_time=SENT,
                         software=HUB)  # fmt: skip
    assert b"<To>9990001</To>" in reply
    header = parse_message(reply).header
    assert (header.to, header.from_) == (Party(None, "9990001"), Party("P", "1234567"))


def test_salvage_takes_a_party_without_qualifier() -> None:
    document = b'<Header><From>9990001</From><To Qualifier="P">1234567</To><MessageID>M-1'
    document += b"</MessageID>"
    ctx = salvage_reply_context(document, FALLBACK_TO, FALLBACK_FROM)
    assert ctx == ReplyContext(Party(None, "9990001"), Party("P", "1234567"), "M-1")


def test_salvage_reads_prefixed_elements() -> None:
    document = b"""<ns:Message xmlns:ns="http://www.ncpdp.org/schema/SCRIPT"><ns:Header>
    <ns:To Qualifier="P">1234567</ns:To><ns:From Qualifier="D">9990001</ns:From>
    <ns:MessageID>NS-1</ns:MessageID></ns:Header><ns:Body><ns:NewRx>"""
    ctx = salvage_reply_context(document, FALLBACK_TO, FALLBACK_FROM)
    assert ctx == ReplyContext(Party("D", "9990001"), Party("P", "1234567"), "NS-1")


def test_salvage_never_echoes_non_ascii() -> None:
    document = '<Header><From Qualifier="D">D\u00e9cor</From><MessageID>M-\u00e9</MessageID>'
    ctx = salvage_reply_context(document.encode(), FALLBACK_TO, FALLBACK_FROM)
    assert ctx == ReplyContext(FALLBACK_TO, FALLBACK_FROM, None)


def test_reply_context_refuses_non_ascii() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        ReplyContext(Party("D", "D\u00e9cor"), FALLBACK_FROM)
    with pytest.raises(ValueError, match="ASCII"):
        ReplyContext(FALLBACK_TO, FALLBACK_FROM, "M-\u00e9")


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("bad: /Message/Body/NewRx/Pr\u00e9nom", "bad: /Message/Body/NewRx/Prenom"),
        ("\u65e5\u672c \u00c5ngstr\u00f6m \ufb01le", "?? Angstrom file"),
        ("a\u2028b\u00a0c", "a b c"),
    ],
)
def test_descriptions_are_ascii(text: str, cleaned: str) -> None:
    assert clean_text(text, 500) == cleaned


def test_error_naming_a_non_ascii_element_is_valid_script() -> None:
    document = newrx_xml(append={"Body/NewRx": "<Pr\u00e9nom>x</Pr\u00e9nom>"})
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    reply = build_rejection(request_context(), caught.value, message_id="HUB-8", sent_time=SENT,
                            software=HUB)  # fmt: skip
    assert reply.isascii()
    error = parse_message(reply).body
    assert isinstance(error, Error)
    assert error.description is not None
    assert error.description.endswith("/Message/Body/NewRx/Prenom")


@pytest.mark.parametrize("namespace", [SCRIPT_NAMESPACE, "http://www.surescripts.com/messaging"])
def test_script_10_6_is_answered_in_10_6(namespace: str) -> None:
    request = (
        (FIXTURES / "newrx_10_6.xml")
        .read_bytes()
        .replace(SCRIPT_NAMESPACE.encode(), namespace.encode())
    )
    with pytest.raises(Script106Error) as caught:
        parse_message(request)
    assert caught.value.namespace == namespace
    ctx = salvage_reply_context(request, FALLBACK_TO, FALLBACK_FROM)
    reply = build_rejection(ctx, caught.value, message_id="HUB-9", sent_time=SENT, software=HUB)
    root = etree.fromstring(reply)
    ns = {"s": namespace}
    assert root.tag == f"{{{namespace}}}Message"
    assert (root.get("version"), root.get("release")) == ("010", "006")
    assert [etree.QName(child).localname for child in root.find("s:Header", ns)] == [
        "To", "From", "MessageID", "RelatesToMessageID", "SentTime", "SenderSoftware"
    ]  # fmt: skip
    assert root.findtext("s:Header/s:To", namespaces=ns) == "9990001"
    assert root.findtext("s:Header/s:RelatesToMessageID", namespaces=ns) == "TEST-106-0001"
    error = root.find("s:Body/s:Error", ns)
    assert error is not None
    assert [etree.QName(child).localname for child in error] == ["Code", "Description"]
    assert error.findtext("s:Code", namespaces=ns) == "900"
    description = error.findtext("s:Description", namespaces=ns) or ""
    assert 0 < len(description) <= DESCRIPTION_10_6_MAX
    assert "2017071" in description


@pytest.mark.parametrize(
    ("data", "transaction"),
    [
        (b"<Message><Header/><Body><Status><Code>9", "Status"),
        (b"<Message><Body>\n   <!-- a - comment -->\n   <ns:Error><ns:Code>", "Error"),
        (b'<x:Body a="1"><x:Verify/></x:Body>', "Verify"),
        (newrx_xml(), "NewRx"),
        (b"<Message><Header><MessageID>1</MessageID></Header>", None),
        (b"<Body>" + b" " * 2000 + b"<Status>", None),  # too far to look
        (b"\xff\xfe garbage", None),
    ],
)
def test_salvage_finds_the_transaction(data: bytes, transaction: str | None) -> None:
    assert salvage_transaction(data) == transaction


def test_salvaging_the_transaction_is_fast_on_hostile_input() -> None:
    hostile = [
        b"<Body>" + b" " * 70_000,
        b"<Body><!-- " + b"-" * 70_000,
        b"<Body>" + b"<!---->  " * 10_000,
        b"<Body" + b" a" * 40_000,
    ]
    started = time.perf_counter()
    assert [salvage_transaction(data) for data in hostile] == [None] * 4
    assert time.perf_counter() - started < 0.5
