"""``RxChangeRequest``: a pharmacy asks the prescriber to change a prescription (NCPDP SCRIPT
Standard 2017071).

Written and read in this order: MessageRequestCode, MessageRequestSubCode (0..n), then the
optional ReturnReceipt, RequestReferenceNumber, UrgencyIndicatorCode, AllergyOrAdverseEvent,
BenefitsCoordination, Facility (accepted, not written), Patient, Pharmacy, Prescriber,
Observation (accepted, not written), MedicationPrescribed (the prescription as written),
MedicationRequested (0..n, what the pharmacy proposes), Supervisor and FollowUpPrescriber
(accepted, not written). The order is that of public 2017071 samples; the XSD is NCPDP member
material.

The header relates to the NewRx (``RelatesToMessageID`` = its ``MessageID``) and carries its
``PrescriberOrderNumber``.

``MessageRequestCode`` values: the reference (ncpdp-script.md) does not list them. These are the
best-documented public values (Surescripts-certified vendors' documentation and VA VistA code,
unverified against the Standard): G generic substitution, T therapeutic interchange, P prior
authorization required, S script clarification, D drug use evaluation, OS out of stock, U
prescriber authorization. U needs at least one ``MessageRequestSubCode`` (A..M, what the
prescriber must confirm: licence, DEA registration, NPI, ...); no other code takes one. G and T
propose a product, so they need at least one MedicationRequested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Final

from lxml import etree

from eprescribe.ncpdp.errors import ContentInvalidError
from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.medication import MedicationPrescribed, parse_medication_prescribed
from eprescribe.ncpdp.outbound.context import OriginalPrescription
from eprescribe.ncpdp.outbound.medication_line import (
    MedicationLine,
    parse_medication_line,
    write_medication_line,
)
from eprescribe.ncpdp.outbound.write import (
    add_leaf,
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
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Spec,
    in_code_list,
    items,
    leaf,
    opt,
    req,
    walk,
)
from eprescribe.ncpdp.types import SenderSoftware

__all__ = [
    "PRESCRIBER_AUTHORIZATION_SUBCODES",
    "RX_CHANGE_REQUEST_PATH",
    "ChangeRequestCode",
    "RxChangeRequest",
    "build_rx_change_request",
    "parse_rx_change_request",
    "rx_change_request",
]

RX_CHANGE_REQUEST_PATH: Final = "/Message/Body/RxChangeRequest"


class ChangeRequestCode(enum.StrEnum):
    """``MessageRequestCode`` of an RxChangeRequest (public values, see the module docstring)."""

    GENERIC_SUBSTITUTION = "G"
    THERAPEUTIC_INTERCHANGE = "T"
    PRIOR_AUTHORIZATION = "P"
    SCRIPT_CLARIFICATION = "S"
    DRUG_USE_EVALUATION = "D"
    OUT_OF_STOCK = "OS"
    PRESCRIBER_AUTHORIZATION = "U"


#: ``MessageRequestSubCode`` of a prescriber authorization request (U): A state licence, B DEA
#: registration, C DEA class, D state controlled substance registration, E its class, F
#: DATA 2000 waiver, G NPI, H benefit plan enrolment, I specialty, J supervising prescriber,
#: K certificate to prescribe, L REMS, M Medicaid enrolment (public values, unverified).
PRESCRIBER_AUTHORIZATION_SUBCODES: Final = frozenset("ABCDEFGHIJKLM")
_PROPOSES_PRODUCT: Final = frozenset(
    {ChangeRequestCode.GENERIC_SUBSTITUTION, ChangeRequestCode.THERAPEUTIC_INTERCHANGE}
)
_CODES: Final = frozenset(code.value for code in ChangeRequestCode)

_RX_CHANGE_REQUEST = Spec(
    req("MessageRequestCode", 2),
    opt("MessageRequestSubCode", UNBOUNDED, 1),
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
    req("MedicationPrescribed"),
    opt("MedicationRequested", UNBOUNDED),
    opt("Supervisor"),
    opt("FollowUpPrescriber"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class RxChangeRequest:
    """An RxChangeRequest body: the prescription as written and what the pharmacy asks."""

    request_code: ChangeRequestCode
    patient: Patient
    pharmacy: Pharmacy
    prescriber: Prescriber
    medication_prescribed: MedicationPrescribed
    medication_requested: tuple[MedicationLine, ...] = ()
    request_sub_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _problem(self.request_code, self.request_sub_codes, self.medication_requested)
        if problem is not None:
            raise ValueError(problem[0])


def _problem(
    code: str, sub_codes: tuple[str, ...], requested: tuple[MedicationLine, ...]
) -> tuple[str, str] | None:
    """Why these values make no RxChangeRequest and the element at fault, or ``None`` (shared
    by the value object and the parser)."""
    if code not in _CODES:
        return "unknown MessageRequestCode", "MessageRequestCode"
    if code == ChangeRequestCode.PRESCRIBER_AUTHORIZATION:
        if not sub_codes:
            return "prescriber authorization needs a MessageRequestSubCode", "MessageRequestSubCode"
        if not set(sub_codes) <= PRESCRIBER_AUTHORIZATION_SUBCODES:
            return "unknown MessageRequestSubCode", "MessageRequestSubCode"
    elif sub_codes:
        return (
            "only prescriber authorization takes a MessageRequestSubCode",
            "MessageRequestSubCode",
        )
    if code in _PROPOSES_PRODUCT and not requested:
        return "a substitution request needs a MedicationRequested", "MedicationRequested"
    return None


def build_rx_change_request(header: Header, request: RxChangeRequest) -> bytes:
    """The whole message: ``header`` (see :func:`rx_change_request`) and the body."""
    path = RX_CHANGE_REQUEST_PATH
    body = etree.Element("RxChangeRequest")
    add_leaf(body, "MessageRequestCode", request.request_code.value)
    for sub_code in request.request_sub_codes:
        add_leaf(body, "MessageRequestSubCode", sub_code)
    write_patient(body, request.patient, path)
    write_pharmacy(body, request.pharmacy, path)
    write_prescriber(body, request.prescriber, path)
    write_medication_prescribed(body, request.medication_prescribed, path)
    for position, line in enumerate(request.medication_requested):
        where = f"{path}/MedicationRequested[{position + 1}]"
        write_medication_line(body, "MedicationRequested", line, where)
    return message_document(header, body)


def rx_change_request(
    original: OriginalPrescription,
    code: ChangeRequestCode,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    requested: tuple[MedicationLine, ...] = (),
    sub_codes: tuple[str, ...] = (),
) -> bytes:
    """An RxChangeRequest about ``original``, relating to its NewRx.

    ``message_id`` is the caller's: a redelivery passes the same one (and gets the same bytes
    for the same ``sent_time``).
    """
    request = RxChangeRequest(
        request_code=code,
        patient=original.patient,
        pharmacy=original.pharmacy,
        prescriber=original.prescriber,
        medication_prescribed=original.medication,
        medication_requested=requested,
        request_sub_codes=sub_codes,
    )
    header = original.header(
        message_id=message_id,
        sent_time=sent_time,
        software=software,
        relates_to_newrx=True,
    )
    return build_rx_change_request(header, request)


def parse_rx_change_request(
    el: etree._Element, path: str = RX_CHANGE_REQUEST_PATH
) -> RxChangeRequest:
    """Validate an ``RxChangeRequest`` element (structure 3000, then content 2000)."""
    children = walk(el, _RX_CHANGE_REQUEST, path)
    code = in_code_list(
        leaf(children["MessageRequestCode"][0], f"{path}/MessageRequestCode", 2),
        _CODES,
        f"{path}/MessageRequestCode",
    )
    sub_codes = tuple(
        leaf(item, where, 1) for item, where in items(children, "MessageRequestSubCode", path)
    )
    requested = tuple(
        parse_medication_line(item, where)
        for item, where in items(children, "MedicationRequested", path)
    )
    problem = _problem(code, sub_codes, requested)
    if problem is not None:
        detail, element = problem
        raise ContentInvalidError(detail, f"{path}/{element}")
    return RxChangeRequest(
        request_code=ChangeRequestCode(code),
        patient=parse_patient(children["Patient"][0], f"{path}/Patient"),
        pharmacy=parse_pharmacy(children["Pharmacy"][0], f"{path}/Pharmacy"),
        prescriber=parse_prescriber(children["Prescriber"][0], f"{path}/Prescriber"),
        medication_prescribed=parse_medication_prescribed(
            children["MedicationPrescribed"][0], f"{path}/MedicationPrescribed"
        ),
        medication_requested=requested,
        request_sub_codes=sub_codes,
    )
