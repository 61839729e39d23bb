"""Messages the hub sends for a pharmacy to a prescriber (NCPDP SCRIPT Standard 2017071).

One module per transaction owns its shape, both ways: the builder that writes it from value
objects and the parser, registered with :func:`~eprescribe.ncpdp.message.parse_message`, that
validates it (and will read a prescriber's answers later). :mod:`.write` writes the shared
blocks and holds the text policy: ``an`` values transliterated to ASCII or refused, free text
shortened.

- :mod:`.rxchangerequest`: RxChangeRequest (generic or therapeutic substitution, prior
  authorization, script clarification, drug use evaluation, out of stock, prescriber
  authorization);
- :mod:`.rxrenewalrequest`: RxRenewalRequest (refused when the NewRx prohibited it);
- :mod:`.cancelrxresponse`: CancelRxResponse (approved or denied);
- :mod:`.rxfill`: RxFill (dispensed, partially dispensed, not dispensed).

Builders take the ``MessageID`` from the caller, so a redelivery reuses it. No delivery here.
"""

from eprescribe.ncpdp.outbound.cancelrxresponse import (
    CANCEL_DENIAL_REASONS,
    CancelRxResponse,
    build_cancel_rx_response,
    cancel_rx_response,
)
from eprescribe.ncpdp.outbound.context import OriginalPrescription
from eprescribe.ncpdp.outbound.medication_line import MedicationLine
from eprescribe.ncpdp.outbound.rxchangerequest import (
    PRESCRIBER_AUTHORIZATION_SUBCODES,
    ChangeRequestCode,
    RxChangeRequest,
    build_rx_change_request,
    rx_change_request,
)
from eprescribe.ncpdp.outbound.rxfill import RxFill, build_rx_fill, rx_fill
from eprescribe.ncpdp.outbound.rxrenewalrequest import (
    RenewalProhibitedError,
    RxRenewalRequest,
    build_rx_renewal_request,
    rx_renewal_request,
)
from eprescribe.ncpdp.outbound.write import OutboundError

__all__ = [
    "CANCEL_DENIAL_REASONS",
    "PRESCRIBER_AUTHORIZATION_SUBCODES",
    "CancelRxResponse",
    "ChangeRequestCode",
    "MedicationLine",
    "OriginalPrescription",
    "OutboundError",
    "RenewalProhibitedError",
    "RxChangeRequest",
    "RxFill",
    "RxRenewalRequest",
    "build_cancel_rx_response",
    "build_rx_change_request",
    "build_rx_fill",
    "build_rx_renewal_request",
    "cancel_rx_response",
    "rx_change_request",
    "rx_fill",
    "rx_renewal_request",
]
