"""The one hardened XML parser: DTDs, entities, encodings and malformed input."""

from __future__ import annotations

import threading

import pytest

from eprescribe.ncpdp.errors import XmlSyntaxError
from eprescribe.ncpdp.xml import parse_document
from tests.support.script_samples import newrx_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><Message>&lol3;</Message>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Message><Header><MessageID>&xxe;</MessageID></Header></Message>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Message SYSTEM "http://127.0.0.1:9/script.dtd"><Message/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]><Message/>"""


def test_parses_a_message_to_its_root() -> None:
    root = parse_document(newrx_xml())
    assert root.tag == "Message"
    assert root.findtext("Header/MessageID") == "TEST-NEWRX-0001"


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PARAMETER_ENTITY, b"<!DOCTYPE Message><Message/>"],
    ids=["billion-laughs", "xxe-file", "external-dtd", "parameter-entity", "bare-doctype"],
)
def test_any_doctype_is_rejected_as_syntax_error(document: bytes) -> None:
    with pytest.raises(XmlSyntaxError) as caught:
        parse_document(document)
    assert caught.value.description_code == "500"
    assert caught.value.detail == "DOCTYPE is not allowed"
    assert caught.value.xpath is None


def test_xxe_never_reads_the_file() -> None:
    with pytest.raises(XmlSyntaxError) as caught:
        parse_document(XXE)
    assert "root:" not in caught.value.description


def test_undefined_entity_is_a_syntax_error() -> None:
    with pytest.raises(XmlSyntaxError, match="malformed XML"):
        parse_document(b"<Message>&undefined;</Message>")


@pytest.mark.parametrize("document", [b"", b"   \n\t", b"\x00"])
def test_empty_input_is_rejected(document: bytes) -> None:
    with pytest.raises(XmlSyntaxError):
        parse_document(document)


@pytest.mark.parametrize(
    "document",
    [
        b"<Message><Header></Message>",
        b"not xml at all",
        b"<Message>\xff\xfe</Message>",
        b'<?xml version="1.0" encoding="no-such-charset"?><Message/>',
        b"<Message/><Message/>",
        b"  <?xml version='1.0'?><Message/>",
    ],
)
def test_malformed_input_is_rejected(document: bytes) -> None:
    with pytest.raises(XmlSyntaxError) as caught:
        parse_document(document)
    assert caught.value.detail.startswith(("malformed XML", "unparseable XML"))


def test_detail_is_short_and_does_not_echo_the_input() -> None:
    secret = b"PATIENT-SECRET-" * 500
    with pytest.raises(XmlSyntaxError) as caught:
        parse_document(b"<Message><" + secret)
    assert len(caught.value.detail) < 200
    assert "PATIENT-SECRET-PATIENT-SECRET" not in caught.value.detail


def test_utf8_bom_is_tolerated() -> None:
    assert parse_document(b"\xef\xbb\xbf" + newrx_xml()).tag == "Message"


def test_declared_encoding_is_honoured() -> None:
    document = '<?xml version="1.0" encoding="ISO-8859-1"?><Message>Jos\xe9</Message>'
    assert parse_document(document.encode("latin-1")).text == "Jos\xe9"


def test_utf16_with_bom_is_tolerated() -> None:
    document = '<?xml version="1.0" encoding="UTF-16"?><Message>x</Message>'.encode("utf-16")
    assert parse_document(document).text == "x"


def test_comments_and_processing_instructions_are_dropped() -> None:
    root = parse_document(b"<Message><!-- note --><?pi data?><Header/></Message>")
    assert [child.tag for child in root] == ["Header"]


def test_excessive_depth_is_rejected() -> None:
    depth = 5000
    with pytest.raises(XmlSyntaxError):
        parse_document(b"<a>" * depth + b"</a>" * depth)


def test_parsers_are_per_thread() -> None:
    document, failures = newrx_xml(), []

    def work() -> None:
        for _ in range(200):
            if parse_document(document).tag != "Message":
                failures.append("wrong root")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
