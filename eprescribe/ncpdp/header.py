"""The SCRIPT ``Header`` (NCPDP SCRIPT Standard 2017071).

Children are checked in schema order: To, From, MessageID, RelatesToMessageID, SentTime,
Security, SenderSoftware, Mailbox, TestMessage, RxReferenceNumber, TertiaryIdentifier,
PrescriberOrderNumber, DigitalSignature, PrescriberOrderGroup, RxReferenceOrderGroup.
``TestMessage`` (1 or true: the message is a test, never a prescription to fill) is read;
Security, Mailbox, TertiaryIdentifier and the order groups are accepted without content
validation.

``To``/``From`` ``@Qualifier`` is optional (a missing one is ``Party.qualifier`` None). The
values a reply echoes, ``MessageID`` (as ``RelatesToMessageID``) and ``To``/``From``, must be
printable ASCII, the Standard's ``an`` characters: anything else is refused (3000 with the
XPath) rather than echoed into a reply that would then be invalid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from lxml import etree

from eprescribe.ncpdp.errors import StandardViolationError
from eprescribe.ncpdp.structure import (
    Children,
    Slot,
    Spec,
    boolean_value,
    datetime_value,
    leaf,
    opt,
    opt_text,
    req,
    text,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import (
    IDENTIFIER_MAX,
    PARTY_QUALIFIERS,
    PARTY_VALUE_MAX,
    Party,
    SenderSoftware,
)

__all__ = ["HEADER_PATH", "DigitalSignature", "Header", "parse_header"]

HEADER_PATH: Final = "/Message/Header"
_SIGNATURE_MAX: Final = 100_000
_NO_OFFSET: Final = dt.timedelta(0)

_HEADER = Spec(
    req("To"),
    req("From"),
    req("MessageID"),
    opt("RelatesToMessageID"),
    req("SentTime"),
    opt("Security"),
    req("SenderSoftware"),
    opt("Mailbox"),
    opt("TestMessage"),
    opt("RxReferenceNumber"),
    opt("TertiaryIdentifier"),
    opt("PrescriberOrderNumber"),
    opt("DigitalSignature"),
    opt("PrescriberOrderGroup"),
    opt("RxReferenceOrderGroup"),
)
_SENDER_SOFTWARE = Spec(
    req("SenderSoftwareDeveloper", IDENTIFIER_MAX),
    req("SenderSoftwareProduct", IDENTIFIER_MAX),
    req("SenderSoftwareVersionRelease", IDENTIFIER_MAX),
)
_SIGNATURE_PARTS: Final = ("DigestMethod", "DigestValue", "SignatureValue", "X509Data")
# Either the indicator or the signature parts (which may come twice); their inner order is not
# checked.
_DIGITAL_SIGNATURE = Spec(Slot((*_SIGNATURE_PARTS, "DigitalSignatureIndicator"), 1, 8))


@dataclasses.dataclass(frozen=True, slots=True)
class DigitalSignature:
    """``Header/DigitalSignature``: the signature parts or the boolean indicator.

    When the signature parts come twice, the first of each is kept here; the original bytes
    are what the hub archives.
    """

    version: str | None
    indicator: bool | None
    digest_method: str | None = None
    digest_value: str | None = None
    signature_value: str | None = None
    x509_data: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    """The validated message header. ``sent_time`` is aware and in UTC."""

    to: Party
    from_: Party
    message_id: str
    sent_time: dt.datetime
    sender_software: SenderSoftware
    relates_to_message_id: str | None = None
    prescriber_order_number: str | None = None
    rx_reference_number: str | None = None
    digital_signature: DigitalSignature | None = None
    #: ``TestMessage`` 1 (or true): the sender's test, acknowledged and kept, never filled
    test_message: bool = False

    def __post_init__(self) -> None:
        if not 1 <= len(self.message_id) <= IDENTIFIER_MAX:
            raise ValueError("MessageID is an1..35")
        if self.sent_time.utcoffset() != _NO_OFFSET:
            raise ValueError("sent_time must be aware and in UTC")


def parse_header(el: etree._Element, path: str = HEADER_PATH) -> Header:
    """Validate a ``Header`` element and return its value object."""
    children = walk(el, _HEADER, path)
    # Arguments by position, in field order: keywords cost noticeably more on this hot path.
    return Header(
        _party(children["To"][0], f"{path}/To"),
        _party(children["From"][0], f"{path}/From"),
        _message_id(text(children, "MessageID", path), path),
        datetime_value(text(children, "SentTime", path, 40), f"{path}/SentTime"),
        _sender_software(children["SenderSoftware"][0], f"{path}/SenderSoftware"),
        _opt_identifier(children, "RelatesToMessageID", path),
        _opt_identifier(children, "PrescriberOrderNumber", path),
        _opt_identifier(children, "RxReferenceNumber", path),
        _digital_signature(children, path),
        _test_message(children, path),
    )


def _test_message(children: Children, path: str) -> bool:
    value = opt_text(children, "TestMessage", path, 5)
    return value is not None and boolean_value(value, f"{path}/TestMessage")


def _printable(value: str, path: str) -> str:
    if not value.isprintable():
        raise StandardViolationError("control characters not allowed", path)
    return value


def _ascii(value: str, path: str) -> str:
    """``value`` if it is printable ASCII, the Standard's ``an`` characters.

    For the values a reply echoes (``MessageID`` as ``RelatesToMessageID``, ``From`` as ``To``):
    anything else would make the hub's own reply invalid, so it is refused here instead.
    """
    if not (value.isascii() and value.isprintable()):
        if not value.isprintable():
            raise StandardViolationError("control characters not allowed", path)
        raise StandardViolationError("only printable ASCII characters allowed", path)
    return value


def _identifier(value: str, path: str, name: str) -> str:
    """``value`` of the ``name`` child if it is a printable an1..35 (its path built on error)."""
    if len(value) > IDENTIFIER_MAX or not value.isprintable():
        where = f"{path}/{name}"
        if len(value) > IDENTIFIER_MAX:
            raise StandardViolationError(f"value longer than {IDENTIFIER_MAX} characters", where)
        _printable(value, where)
    return value


def _message_id(value: str, path: str) -> str:
    """``MessageID``: an1..35 in printable ASCII (a reply echoes it)."""
    return _ascii(_identifier(value, path, "MessageID"), f"{path}/MessageID")


def _opt_identifier(children: Children, name: str, path: str) -> str | None:
    value = opt_text(children, name, path)
    return None if value is None else _identifier(value, path, name)


def _party(el: etree._Element, path: str) -> Party:
    """``To`` or ``From``: its value is echoed in every reply, so it must be printable ASCII
    (the Standard's ``an``); ``@Qualifier`` is optional."""
    value = _ascii(leaf(el, path, PARTY_VALUE_MAX), path)
    qualifier = el.get("Qualifier")
    if qualifier is not None and qualifier not in PARTY_QUALIFIERS:
        raise StandardViolationError("value not in code list", f"{path}/@Qualifier")
    return Party(qualifier, value)


def _sender_software(el: etree._Element, path: str) -> SenderSoftware:
    values = walk_leaves(el, _SENDER_SOFTWARE, path)
    for name, value in values.items():
        if not value.isprintable():
            _printable(value, f"{path}/{name}")
    return SenderSoftware(
        values["SenderSoftwareDeveloper"],
        values["SenderSoftwareProduct"],
        values["SenderSoftwareVersionRelease"],
    )


def _digital_signature(header: Children, path: str) -> DigitalSignature | None:
    group = header.get("DigitalSignature")
    if group is None:
        return None
    el, path = group[0], f"{path}/DigitalSignature"
    children = walk(el, _DIGITAL_SIGNATURE, path)
    indicator = children.get("DigitalSignatureIndicator")
    if indicator is not None:
        if len(indicator) > 1 or len(children) > 1:
            raise StandardViolationError("indicator and signature are exclusive", path)
        where = f"{path}/DigitalSignatureIndicator"
        return DigitalSignature(
            el.get("Version"), boolean_value(leaf(indicator[0], where, 5), where)
        )
    return DigitalSignature(  # version, indicator, then the signature parts in field order
        el.get("Version"),
        None,
        _first_text(children, "DigestMethod", path),
        _first_text(children, "DigestValue", path),
        _first_text(children, "SignatureValue", path),
        _first_text(children, "X509Data", path),
    )


def _first_text(children: Children, name: str, path: str) -> str | None:
    group = children.get(name)
    if group is None:
        return None
    where = f"{path}/{name}" if len(group) == 1 else f"{path}/{name}[1]"
    return leaf(group[0], where, _SIGNATURE_MAX)
