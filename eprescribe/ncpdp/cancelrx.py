"""The ``CancelRx`` transaction (NCPDP SCRIPT Standard 2017071).

A prescriber's system asks the pharmacy to cancel a prescription it sent. The body repeats the
order it cancels: ``Patient`` (1), ``Pharmacy`` (0..1), ``Prescriber`` (1) and
``MedicationPrescribed`` (1), each read and validated exactly as in a NewRx (3000 with the
XPath). The NewRx's other optional blocks are tolerated in their NewRx positions without
their content being read (AllergyOrAdverseEvent, BenefitsCoordination 0..4, Facility,
Observation, Supervisor, FollowUpPrescriber): a cancel needs none of them, and a sender that
copies its NewRx into its CancelRx should not be refused for it.

Which order is cancelled is said in the header, not the body: ``PrescriberOrderNumber`` (the
sender's number of the order, as in its NewRx) and ``RxReferenceNumber`` (the pharmacy's
number, when the pharmacy gave one). :class:`CancelRequest` joins the two for the matching
rule (:mod:`eprescribe.cancellations`). ``RelatesToMessageID`` is for responses
(reference ncpdp-script.md §2), and a CancelRx is a request, so it is neither required nor
used to find the order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from lxml import etree

from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.medication import MedicationPrescribed, parse_medication_prescribed
from eprescribe.ncpdp.parties import (
    Patient,
    Pharmacy,
    Prescriber,
    parse_patient,
    parse_pharmacy,
    parse_prescriber,
)
from eprescribe.ncpdp.structure import Spec, opt, req, walk
from eprescribe.ncpdp.types import Party

__all__ = ["CANCELRX_PATH", "CancelRequest", "CancelRx", "parse_cancelrx"]

CANCELRX_PATH: Final = "/Message/Body/CancelRx"

_CANCELRX = Spec(
    opt("AllergyOrAdverseEvent"),
    opt("BenefitsCoordination", 4),
    opt("Facility"),
    req("Patient"),
    opt("Pharmacy"),
    req("Prescriber"),
    opt("Observation"),
    req("MedicationPrescribed"),
    opt("Supervisor"),
    opt("FollowUpPrescriber"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class CancelRx:
    """A validated CancelRx body: the order to cancel, as the prescriber describes it."""

    patient: Patient
    pharmacy: Pharmacy | None
    prescriber: Prescriber
    medication: MedicationPrescribed


@dataclasses.dataclass(frozen=True, slots=True)
class CancelRequest:
    """What the matching rule reads of a CancelRx message: who sent it, the numbers naming
    the order, and the order's body."""

    sender: Party
    sent_time: dt.datetime
    prescriber_order_number: str | None
    rx_reference_number: str | None
    body: CancelRx

    @classmethod
    def of(cls, header: Header, body: CancelRx) -> CancelRequest:
        return cls(
            header.from_,
            header.sent_time,
            header.prescriber_order_number,
            header.rx_reference_number,
            body,
        )


def parse_cancelrx(el: etree._Element, path: str = CANCELRX_PATH) -> CancelRx:
    """Validate a ``CancelRx`` element and return its value object."""
    children = walk(el, _CANCELRX, path)
    pharmacy = children.get("Pharmacy")
    return CancelRx(
        parse_patient(children["Patient"][0], f"{path}/Patient"),
        parse_pharmacy(pharmacy[0], f"{path}/Pharmacy") if pharmacy else None,
        parse_prescriber(children["Prescriber"][0], f"{path}/Prescriber"),
        parse_medication_prescribed(
            children["MedicationPrescribed"][0], f"{path}/MedicationPrescribed"
        ),
    )
