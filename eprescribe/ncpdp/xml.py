"""The one hardened XML parser for inbound SCRIPT messages (NCPDP SCRIPT Standard 2017071).

Every SCRIPT byte string the hub receives goes through :func:`parse_document`. The parser never
resolves entities, never touches the network or the file system, never loads a DTD and keeps
libxml2's limits on depth and text size (``huge_tree=False``). A document with any DOCTYPE is
rejected outright, so internal entities (billion laughs), external entities (XXE) and external
DTDs never reach the structure validator. Whatever the input, the only exceptions raised are
:class:`~eprescribe.ncpdp.errors.XmlSyntaxError` (description code 500).

lxml parsers are not thread-safe, so each thread gets its own (``threading.local``).
"""

from __future__ import annotations

import threading

from lxml import etree

from eprescribe.ncpdp.errors import XmlSyntaxError

__all__ = ["parse_document"]

_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse_document(data: bytes) -> etree._Element:
    """Parse ``data`` into its root element, or raise :class:`XmlSyntaxError`."""
    if not data or not data.strip():
        raise XmlSyntaxError("empty message body")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlSyntaxError(_syntax_detail(data, exc)) from None
    except (etree.LxmlError, ValueError, LookupError, TypeError) as exc:
        # Defensive: lxml signals a few input problems (e.g. odd encodings) outside XMLSyntaxError.
        raise XmlSyntaxError(f"unparseable XML ({type(exc).__name__})") from None
    _reject_dtd(root)
    return root


def _reject_dtd(root: etree._Element) -> None:
    docinfo = root.getroottree().docinfo
    doctype: str = getattr(docinfo, "doctype", "")  # lxml-stubs 0.5 lacks DocInfo.doctype
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlSyntaxError("DOCTYPE is not allowed")
    # Entity nodes can only survive with a DTD; checked anyway so that no parser setting change
    # can ever let an unexpanded reference through to the value readers.
    for _ in root.iter(etree.Entity):
        raise XmlSyntaxError("entity references are not allowed")


def _syntax_detail(data: bytes, exc: etree.XMLSyntaxError) -> str:
    """Where and what, as libxml2's error type: its free-text message may quote the input."""
    if b"<!DOCTYPE" in data:
        return "DOCTYPE is not allowed"
    # lxml-stubs 0.5 does not describe the error log entries.
    last = getattr(exc.error_log, "last_error", None)
    kind: str = getattr(last, "type_name", None) or "ERR_UNKNOWN"
    line, column = exc.position if exc.position else (0, 0)
    return f"malformed XML at line {line}, column {column} ({kind})"
