"""``RxRenewalRequest``: a pharmacy asks the prescriber to renew a prescription that has no
refills left (NCPDP SCRIPT Standard 2017071).

Written and read in this order: the optional ReturnReceipt, RequestReferenceNumber,
UrgencyIndicatorCode, AllergyOrAdverseEvent, BenefitsCoordination, Facility (accepted, not
written), Patient, Pharmacy, Prescriber, Observation (accepted, not written),
MedicationDispensed (what the pharmacy last dispensed, with the refills it asks for),
MedicationPrescribed (the prescription as written), Supervisor and FollowUpPrescriber
(accepted, not written): the order of public 2017071 samples.

A prescriber who sent ``ProhibitRenewalRequest`` true in the NewRx asked not to receive renewal
requests for it: :func:`rx_renewal_request` refuses (:class:`RenewalProhibitedError`). Its header
carries the NewRx's ``PrescriberOrderNumber`` and no ``RelatesToMessageID``: a renewal request
starts a new exchange (the Standard makes the element optional here; public samples omit it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from lxml import etree

from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.medication import MedicationPrescribed, parse_medication_prescribed
from eprescribe.ncpdp.outbound.context import OriginalPrescription
from eprescribe.ncpdp.outbound.medication_line import (
    MedicationLine,
    parse_medication_line,
    write_medication_line,
)
from eprescribe.ncpdp.outbound.write import (
    message_document,
    write_medication_prescribed,
    write_patient,
    write_pharmacy,
    write_prescriber,
)
from eprescribe.ncpdp.parties import (
    Patient,
    Pharmacy,
    Prescriber,
    parse_patient,
    parse_pharmacy,
    parse_prescriber,
)
from eprescribe.ncpdp.structure import UNBOUNDED, Spec, opt, req, walk
from eprescribe.ncpdp.types import SenderSoftware

__all__ = [
    "RX_RENEWAL_REQUEST_PATH",
    "RenewalProhibitedError",
    "RxRenewalRequest",
    "build_rx_renewal_request",
    "parse_rx_renewal_request",
    "rx_renewal_request",
]

RX_RENEWAL_REQUEST_PATH: Final = "/Message/Body/RxRenewalRequest"

_RX_RENEWAL_REQUEST = Spec(
    opt("ReturnReceipt"),
    opt("RequestReferenceNumber"),
    opt("UrgencyIndicatorCode"),
    opt("AllergyOrAdverseEvent"),
    opt("BenefitsCoordination", UNBOUNDED),
    opt("Facility"),
    req("Patient"),
    req("Pharmacy"),
    req("Prescriber"),
    opt("Observation"),
    req("MedicationDispensed"),
    opt("MedicationPrescribed"),
    opt("Supervisor"),
    opt("FollowUpPrescriber"),
)


class RenewalProhibitedError(ValueError):
    """The NewRx said ``ProhibitRenewalRequest`` true: the prescriber takes no renewal request."""


@dataclasses.dataclass(frozen=True, slots=True)
class RxRenewalRequest:
    """An RxRenewalRequest body."""

    patient: Patient
    pharmacy: Pharmacy
    prescriber: Prescriber
    medication_dispensed: MedicationLine
    medication_prescribed: MedicationPrescribed | None = None


def build_rx_renewal_request(header: Header, request: RxRenewalRequest) -> bytes:
    """The whole message: ``header`` (see :func:`rx_renewal_request`) and the body."""
    path = RX_RENEWAL_REQUEST_PATH
    body = etree.Element("RxRenewalRequest")
    write_patient(body, request.patient, path)
    write_pharmacy(body, request.pharmacy, path)
    write_prescriber(body, request.prescriber, path)
    where = f"{path}/MedicationDispensed"
    write_medication_line(body, "MedicationDispensed", request.medication_dispensed, where)
    if request.medication_prescribed is not None:
        write_medication_prescribed(body, request.medication_prescribed, path)
    return message_document(header, body)


def rx_renewal_request(
    original: OriginalPrescription,
    dispensed: MedicationLine,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
) -> bytes:
    """An RxRenewalRequest for ``original``, whose last fill was ``dispensed``.

    Raises :class:`RenewalProhibitedError` when the NewRx prohibited renewal requests.
    ``message_id`` is the caller's: a redelivery passes the same one.
    """
    if original.prohibit_renewal_request:
        raise RenewalProhibitedError("the prescriber prohibited renewal requests (NewRx)")
    request = RxRenewalRequest(
        patient=original.patient,
        pharmacy=original.pharmacy,
        prescriber=original.prescriber,
        medication_dispensed=dispensed,
        medication_prescribed=original.medication,
    )
    header = original.header(
        message_id=message_id, sent_time=sent_time, software=software, relates_to_newrx=False
    )
    return build_rx_renewal_request(header, request)


def parse_rx_renewal_request(
    el: etree._Element, path: str = RX_RENEWAL_REQUEST_PATH
) -> RxRenewalRequest:
    """Validate an ``RxRenewalRequest`` element."""
    children = walk(el, _RX_RENEWAL_REQUEST, path)
    prescribed = children.get("MedicationPrescribed")
    return RxRenewalRequest(
        patient=parse_patient(children["Patient"][0], f"{path}/Patient"),
        pharmacy=parse_pharmacy(children["Pharmacy"][0], f"{path}/Pharmacy"),
        prescriber=parse_prescriber(children["Prescriber"][0], f"{path}/Prescriber"),
        medication_dispensed=parse_medication_line(
            children["MedicationDispensed"][0], f"{path}/MedicationDispensed"
        ),
        medication_prescribed=None
        if prescribed is None
        else parse_medication_prescribed(prescribed[0], f"{path}/MedicationPrescribed"),
    )
