"""The SCRIPT ``Header`` (NCPDP SCRIPT Standard 2017071).

Children are checked in schema order: To, From, MessageID, RelatesToMessageID, SentTime,
Security, SenderSoftware, Mailbox, TestMessage, RxReferenceNumber, TertiaryIdentifier,
PrescriberOrderNumber, DigitalSignature, PrescriberOrderGroup, RxReferenceOrderGroup.
Security, Mailbox, TestMessage, TertiaryIdentifier and the order groups are accepted without
content validation.
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
    in_code_list,
    leaf,
    opt,
    opt_text,
    req,
    text,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import PARTY_QUALIFIERS, Party, SenderSoftware

__all__ = ["HEADER_PATH", "DigitalSignature", "Header", "parse_header"]

HEADER_PATH: Final = "/Message/Header"
_ID_MAX: Final = 35
_PARTY_MAX: Final = 256
_SIGNATURE_MAX: Final = 100_000

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
    req("SenderSoftwareDeveloper", _ID_MAX),
    req("SenderSoftwareProduct", _ID_MAX),
    req("SenderSoftwareVersionRelease", _ID_MAX),
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

    def __post_init__(self) -> None:
        if not 1 <= len(self.message_id) <= _ID_MAX:
            raise ValueError("MessageID is an1..35")
        if self.sent_time.utcoffset() != dt.timedelta(0):
            raise ValueError("sent_time must be aware and in UTC")


def parse_header(el: etree._Element, path: str = HEADER_PATH) -> Header:
    """Validate a ``Header`` element and return its value object."""
    children = walk(el, _HEADER, path)
    return Header(
        to=_party(children["To"][0], f"{path}/To"),
        from_=_party(children["From"][0], f"{path}/From"),
        message_id=_identifier(text(children, "MessageID", path), f"{path}/MessageID"),
        sent_time=datetime_value(text(children, "SentTime", path, 40), f"{path}/SentTime"),
        sender_software=_sender_software(children["SenderSoftware"][0], f"{path}/SenderSoftware"),
        relates_to_message_id=_opt_identifier(children, "RelatesToMessageID", path),
        prescriber_order_number=_opt_identifier(children, "PrescriberOrderNumber", path),
        rx_reference_number=_opt_identifier(children, "RxReferenceNumber", path),
        digital_signature=_digital_signature(children, path),
    )


def _printable(value: str, path: str) -> str:
    if not value.isprintable():
        raise StandardViolationError("control characters not allowed", path)
    return value


def _identifier(value: str, path: str) -> str:
    if len(value) > _ID_MAX:
        raise StandardViolationError(f"value longer than {_ID_MAX} characters", path)
    return _printable(value, path)


def _opt_identifier(children: Children, name: str, path: str) -> str | None:
    value = opt_text(children, name, path)
    return None if value is None else _identifier(value, f"{path}/{name}")


def _party(el: etree._Element, path: str) -> Party:
    value = _printable(leaf(el, path, _PARTY_MAX), path)
    qualifier = el.get("Qualifier")
    if qualifier is None:
        raise StandardViolationError("required attribute missing", f"{path}/@Qualifier")
    return Party(in_code_list(qualifier, PARTY_QUALIFIERS, f"{path}/@Qualifier"), value)


def _sender_software(el: etree._Element, path: str) -> SenderSoftware:
    values = walk_leaves(el, _SENDER_SOFTWARE, path)
    for name, value in values.items():
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
    return DigitalSignature(
        version=el.get("Version"),
        indicator=None,
        digest_method=_first_text(children, "DigestMethod", path),
        digest_value=_first_text(children, "DigestValue", path),
        signature_value=_first_text(children, "SignatureValue", path),
        x509_data=_first_text(children, "X509Data", path),
    )


def _first_text(children: Children, name: str, path: str) -> str | None:
    group = children.get(name)
    if group is None:
        return None
    where = f"{path}/{name}" if len(group) == 1 else f"{path}/{name}[1]"
    return leaf(group[0], where, _SIGNATURE_MAX)
