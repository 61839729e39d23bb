"""``CancelRxResponse``: the pharmacy's answer to a prescriber's CancelRx (NCPDP SCRIPT Standard
2017071).

Body: ``Response`` with ``Approved`` (optional ``Note``) or ``Denied`` (``ReasonCode`` 1..10,
optional ``ReferenceNumber``, optional ``DenialReason``). The header answers the CancelRx: its
From becomes To, ``RelatesToMessageID`` is its ``MessageID``, and its ``PrescriberOrderNumber``
(and ``RxReferenceNumber``, when it had one) are echoed. Read back, anything after ``Response``
(the blocks a CancelRxResponse may repeat from the CancelRx) is accepted unread.

Denial ``ReasonCode`` values: the reference (ncpdp-script.md) does not list them. The Standard
asks for a code when a CancelRx is denied (ONC ISA); these are the codes of SCRIPT's shared
response reason list that fit a pharmacy that cannot cancel, as public implementations use
them (unverified against the Standard): AH patient has picked up the prescription, AJ patient
has picked up a partial fill, AP request already answered by other means (phone, fax). The
``Note``/``DenialReason`` free text is shortened to 70 characters (the length public material
gives; unverified).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from lxml import etree

from eprescribe.ncpdp.errors import ContentInvalidError
from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.outbound.context import pharmacy_header
from eprescribe.ncpdp.outbound.write import add_leaf, free_text, message_document
from eprescribe.ncpdp.structure import (
    Slot,
    Spec,
    items,
    leaf,
    only_child,
    opt,
    opt_text,
    req,
    walk,
)
from eprescribe.ncpdp.types import SenderSoftware

__all__ = [
    "CANCEL_DENIAL_REASONS",
    "CANCEL_RX_RESPONSE_PATH",
    "RESPONSE_TEXT_MAX",
    "CancelRxResponse",
    "build_cancel_rx_response",
    "cancel_rx_response",
    "parse_cancel_rx_response",
]

CANCEL_RX_RESPONSE_PATH: Final = "/Message/Body/CancelRxResponse"
#: Denial reason codes (see the module docstring: public values, unverified).
CANCEL_DENIAL_REASONS: Final = {
    "AH": "Patient has picked up prescription",
    "AJ": "Patient has picked up partial fill of prescription",
    "AP": "Request already responded to by other means (e.g. phone or fax)",
}
#: ``Approved/Note`` and ``Denied/DenialReason`` (an1..70, unverified).
RESPONSE_TEXT_MAX: Final = 70
_MAX_REASON_CODES: Final = 10

_CANCEL_RX_RESPONSE = Spec(opt("RequestReferenceNumber"), req("Response"), open=True)
_RESPONSE = Spec(Slot(("Approved", "Denied")))
_APPROVED = Spec(opt("Note", max_len=RESPONSE_TEXT_MAX))
_DENIED = Spec(
    Slot(("ReasonCode",), 1, _MAX_REASON_CODES, 2),
    opt("ReferenceNumber", max_len=35),
    opt("DenialReason", max_len=RESPONSE_TEXT_MAX),
)


@dataclasses.dataclass(frozen=True, slots=True)
class CancelRxResponse:
    """Approved (with an optional note) or denied (with reason codes and optional text).

    ``text`` is the ``Note`` of an approval or the ``DenialReason`` of a denial; the builder
    shortens it to :data:`RESPONSE_TEXT_MAX`.
    """

    approved: bool
    reason_codes: tuple[str, ...] = ()
    text: str | None = None

    def __post_init__(self) -> None:
        if self.approved and self.reason_codes:
            raise ValueError("an approval carries no denial reason code")
        if not self.approved:
            if not 1 <= len(self.reason_codes) <= _MAX_REASON_CODES:
                raise ValueError("a denial needs 1 to 10 reason codes")
            if not set(self.reason_codes) <= CANCEL_DENIAL_REASONS.keys():
                raise ValueError("unknown denial reason code")

    @classmethod
    def approve(cls, note: str | None = None) -> CancelRxResponse:
        return cls(approved=True, text=note)

    @classmethod
    def deny(cls, *reason_codes: str, reason: str | None = None) -> CancelRxResponse:
        return cls(approved=False, reason_codes=reason_codes, text=reason)


def build_cancel_rx_response(header: Header, response: CancelRxResponse) -> bytes:
    """The whole message: ``header`` (see :func:`cancel_rx_response`) and the body."""
    body = etree.Element("CancelRxResponse")
    outcome = etree.SubElement(
        etree.SubElement(body, "Response"), "Approved" if response.approved else "Denied"
    )
    for code in response.reason_codes:
        add_leaf(outcome, "ReasonCode", code)
    text = free_text(response.text, RESPONSE_TEXT_MAX) if response.text is not None else ""
    if text:
        add_leaf(outcome, "Note" if response.approved else "DenialReason", text)
    return message_document(header, body)


def cancel_rx_response(
    cancel: Header,
    response: CancelRxResponse,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    rx_reference_number: str | None = None,
) -> bytes:
    """The answer to the CancelRx whose header is ``cancel``.

    ``message_id`` is the caller's: a redelivery passes the same one. ``rx_reference_number``
    (the pharmacy's prescription number) replaces the CancelRx's, if it had none.
    """
    header = pharmacy_header(
        cancel.from_,
        cancel.to,
        message_id=message_id,
        sent_time=sent_time,
        software=software,
        relates_to_message_id=cancel.message_id,
        prescriber_order_number=cancel.prescriber_order_number,
        rx_reference_number=cancel.rx_reference_number or rx_reference_number,
    )
    return build_cancel_rx_response(header, response)


def parse_cancel_rx_response(
    el: etree._Element, path: str = CANCEL_RX_RESPONSE_PATH
) -> CancelRxResponse:
    """Validate a ``CancelRxResponse`` element (Approved or Denied)."""
    children = walk(el, _CANCEL_RX_RESPONSE, path)
    path = f"{path}/Response"
    name, outcome = only_child(children["Response"][0], _RESPONSE, path)
    path = f"{path}/{name}"
    if name == "Approved":
        note = opt_text(walk(outcome, _APPROVED, path), "Note", path, RESPONSE_TEXT_MAX)
        return CancelRxResponse(approved=True, text=note)
    denied = walk(outcome, _DENIED, path)
    codes = tuple(leaf(item, where, 2) for item, where in items(denied, "ReasonCode", path))
    for (_, where), code in zip(items(denied, "ReasonCode", path), codes, strict=True):
        if code not in CANCEL_DENIAL_REASONS:
            raise ContentInvalidError("unknown denial reason code", where)
    reason = opt_text(denied, "DenialReason", path, RESPONSE_TEXT_MAX)
    return CancelRxResponse(approved=False, reason_codes=codes, text=reason)
