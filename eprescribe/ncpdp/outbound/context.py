"""What the hub kept of a prescription, as the starting point of what it sends about it, and
the header of everything it sends for a pharmacy.

NCPDP SCRIPT Standard 2017071: a pharmacy's message about a prescription goes to whoever sent
the prescriber's message (its ``Header/From``), from the pharmacy it was addressed to (its
``Header/To``), and names the prescriber's order (``PrescriberOrderNumber``) and, once the
pharmacy has one, its own prescription number (``RxReferenceNumber``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.medication import MedicationPrescribed
from eprescribe.ncpdp.parties import Patient, Pharmacy, Prescriber
from eprescribe.ncpdp.types import Party, SenderSoftware

__all__ = ["OriginalPrescription", "pharmacy_header"]


@dataclasses.dataclass(frozen=True, slots=True)
class OriginalPrescription:
    """A prescription as the hub stored it, with the envelope of the NewRx that brought it.

    ``prescriber_party`` is the NewRx's ``Header/From``, ``pharmacy_party`` its ``Header/To``,
    ``message_id`` its ``MessageID``. ``pharmacy`` is the receiving pharmacy's block (the one the
    NewRx carried, or the hub's record of the pharmacy when it carried none).
    """

    prescriber_party: Party
    pharmacy_party: Party
    message_id: str
    prescriber_order_number: str | None
    patient: Patient
    pharmacy: Pharmacy
    prescriber: Prescriber
    medication: MedicationPrescribed
    prohibit_renewal_request: bool | None = None
    rx_reference_number: str | None = None

    def header(
        self,
        *,
        message_id: str,
        sent_time: dt.datetime,
        software: SenderSoftware,
        relates_to_newrx: bool,
    ) -> Header:
        """The header of a message from the pharmacy to the prescriber about this prescription;
        ``relates_to_newrx``: its ``RelatesToMessageID`` is the NewRx's ``MessageID``."""
        return pharmacy_header(
            self.prescriber_party,
            self.pharmacy_party,
            message_id=message_id,
            sent_time=sent_time,
            software=software,
            relates_to_message_id=self.message_id if relates_to_newrx else None,
            prescriber_order_number=self.prescriber_order_number,
            rx_reference_number=self.rx_reference_number,
        )


def pharmacy_header(
    to: Party,
    pharmacy: Party,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    relates_to_message_id: str | None,
    prescriber_order_number: str | None,
    rx_reference_number: str | None,
) -> Header:
    """The header of a message from ``pharmacy`` (the ``To`` of the prescriber's message) back
    to ``to`` (its ``From``), sent at ``sent_time`` in UTC.

    A pharmacy party stored without ``Qualifier`` (the intake reads it as an NCPDPID) is sent
    as ``P``.
    """
    return Header(
        to=to,
        from_=Party(pharmacy.qualifier or "P", pharmacy.value),
        message_id=message_id,
        sent_time=sent_time.astimezone(dt.UTC),
        sender_software=software,
        relates_to_message_id=relates_to_message_id,
        prescriber_order_number=prescriber_order_number,
        rx_reference_number=rx_reference_number,
    )
