"""The ``RxRenewalResponse`` transaction (NCPDP SCRIPT Standard 2017071).

The prescriber's answer to a pharmacy's RxRenewalRequest. ``Response`` is one of
``Approved`` (the renewal as asked: a new prescription, its ``MedicationPrescribed``),
``ApprovedWithChanges`` (the same, with the prescriber's changes, e.g. fewer refills),
``Replace`` (a new prescription that replaces the one asked about, e.g. another Sig) and
``Denied`` (reason codes and words). The body is read by
:mod:`eprescribe.ncpdp.prescriber_response`; ``RelatesToMessageID`` names the request.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from eprescribe.ncpdp.prescriber_response import (
    PrescriberResponse,
    ResponseKind,
    parse_prescriber_response,
)

__all__ = ["RENEWAL_ANSWERS", "RX_RENEWAL_RESPONSE_PATH", "parse_rx_renewal_response"]

RX_RENEWAL_RESPONSE_PATH: Final = "/Message/Body/RxRenewalResponse"
#: the ``Response`` choices of an RxRenewalResponse
RENEWAL_ANSWERS: Final = frozenset(
    {
        ResponseKind.APPROVED,
        ResponseKind.APPROVED_WITH_CHANGES,
        ResponseKind.REPLACE,
        ResponseKind.DENIED,
    }
)


def parse_rx_renewal_response(
    el: etree._Element, path: str = RX_RENEWAL_RESPONSE_PATH
) -> PrescriberResponse:
    """Validate an ``RxRenewalResponse`` element."""
    return parse_prescriber_response(el, path, "RxRenewalResponse", RENEWAL_ANSWERS)
