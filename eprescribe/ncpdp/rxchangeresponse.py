"""The ``RxChangeResponse`` transaction (NCPDP SCRIPT Standard 2017071).

The prescriber's answer to a pharmacy's RxChangeRequest (the hub sends one for a pharmacist's
"ask the prescriber"). ``Response`` is one of ``Approved`` (the change as asked: a new
prescription, its ``MedicationPrescribed``), ``ApprovedWithChanges`` (the same, as the
prescriber changed it), ``Validated`` (a prior authorization or a prescriber authorization
confirmed; ``ReferenceNumber`` is the approval number, which public material also shows in
``MedicationPrescribed/PriorAuthorization``) and ``Denied`` (reason codes and words). The
body is read by :mod:`eprescribe.ncpdp.prescriber_response`; ``RelatesToMessageID`` names the
request.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from eprescribe.ncpdp.prescriber_response import (
    PrescriberResponse,
    ResponseKind,
    parse_prescriber_response,
)

__all__ = ["CHANGE_ANSWERS", "RX_CHANGE_RESPONSE_PATH", "parse_rx_change_response"]

RX_CHANGE_RESPONSE_PATH: Final = "/Message/Body/RxChangeResponse"
#: the ``Response`` choices of an RxChangeResponse
CHANGE_ANSWERS: Final = frozenset(
    {
        ResponseKind.APPROVED,
        ResponseKind.APPROVED_WITH_CHANGES,
        ResponseKind.VALIDATED,
        ResponseKind.DENIED,
    }
)


def parse_rx_change_response(
    el: etree._Element, path: str = RX_CHANGE_RESPONSE_PATH
) -> PrescriberResponse:
    """Validate an ``RxChangeResponse`` element."""
    return parse_prescriber_response(el, path, "RxChangeResponse", CHANGE_ANSWERS)
