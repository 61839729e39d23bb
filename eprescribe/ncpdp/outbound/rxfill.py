"""``RxFill``: the pharmacy tells the prescriber what became of a prescription it asked fill
status for (NCPDP SCRIPT Standard 2017071; the NewRx's ``RxFillIndicator``).

Written and read in this order: ``FillStatus`` (one of ``Dispensed``, ``PartiallyDispensed``,
``NotDispensed``, ``Transferred``, each with an optional ``Note``), Patient, Pharmacy,
Prescriber, MedicationPrescribed (the prescription as written) and MedicationDispensed (what
was handed over; none for NotDispensed). The reference (ncpdp-script.md) names the
transaction but not its content model: this order, the optional MedicationDispensed, the
``Note`` (an1..70) and the dispensed quantity's ``CodeListQualifier`` 87 (quantity received)
follow public 2017071 material and are unverified against the Standard.

The header is the pharmacy's, to the NewRx's sender, with its ``PrescriberOrderNumber``, the
pharmacy's ``RxReferenceNumber`` (its Rx number) and ``RelatesToMessageID`` the NewRx's
``MessageID`` (unverified: the Standard makes it optional here).
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
    add_leaf,
    free_text,
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
from eprescribe.ncpdp.structure import Slot, Spec, only_child, opt, opt_text, req, walk
from eprescribe.ncpdp.types import SenderSoftware

__all__ = [
    "FILL_STATUSES",
    "RX_FILL_PATH",
    "RxFill",
    "build_rx_fill",
    "parse_rx_fill",
    "rx_fill",
]

RX_FILL_PATH: Final = "/Message/Body/RxFill"
FILL_STATUSES: Final = ("Dispensed", "PartiallyDispensed", "NotDispensed", "Transferred")
#: ``FillStatus/*/Note`` (an1..70, unverified)
FILL_NOTE_MAX: Final = 70
#: Quantity/CodeListQualifier of a dispensed quantity: 87, quantity received (unverified)
DISPENSED_QUANTITY: Final = "87"

_RX_FILL = Spec(
    req("FillStatus"),
    req("Patient"),
    req("Pharmacy"),
    req("Prescriber"),
    req("MedicationPrescribed"),
    opt("MedicationDispensed"),
)
_FILL_STATUS = Spec(Slot(FILL_STATUSES))
_STATUS = Spec(opt("Note", max_len=FILL_NOTE_MAX))


@dataclasses.dataclass(frozen=True, slots=True)
class RxFill:
    """An RxFill body."""

    status: str
    patient: Patient
    pharmacy: Pharmacy
    prescriber: Prescriber
    medication_prescribed: MedicationPrescribed
    medication_dispensed: MedicationLine | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.status not in FILL_STATUSES:
            raise ValueError("unknown fill status")
        if self.status in ("Dispensed", "PartiallyDispensed") and not self.medication_dispensed:
            raise ValueError("a dispensed fill names what was dispensed")


def build_rx_fill(header: Header, fill: RxFill) -> bytes:
    """The whole message: ``header`` (see :func:`rx_fill`) and the body."""
    path = RX_FILL_PATH
    body = etree.Element("RxFill")
    status = etree.SubElement(etree.SubElement(body, "FillStatus"), fill.status)
    note = free_text(fill.note, FILL_NOTE_MAX) if fill.note else ""
    if note:
        add_leaf(status, "Note", note)
    write_patient(body, fill.patient, path)
    write_pharmacy(body, fill.pharmacy, path)
    write_prescriber(body, fill.prescriber, path)
    write_medication_prescribed(body, fill.medication_prescribed, path)
    if fill.medication_dispensed is not None:
        where = f"{path}/MedicationDispensed"
        write_medication_line(body, "MedicationDispensed", fill.medication_dispensed, where)
    return message_document(header, body)


def rx_fill(
    original: OriginalPrescription,
    status: str,
    dispensed: MedicationLine | None,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    note: str | None = None,
) -> bytes:
    """An RxFill about ``original``: ``status`` and, unless NotDispensed, what was
    ``dispensed``. ``message_id`` is the caller's: a redelivery passes the same one."""
    fill = RxFill(
        status=status,
        patient=original.patient,
        pharmacy=original.pharmacy,
        prescriber=original.prescriber,
        medication_prescribed=original.medication,
        medication_dispensed=dispensed,
        note=note,
    )
    header = original.header(
        message_id=message_id,
        sent_time=sent_time,
        software=software,
        relates_to_newrx=True,
    )
    return build_rx_fill(header, fill)


def parse_rx_fill(el: etree._Element, path: str = RX_FILL_PATH) -> RxFill:
    """Validate an ``RxFill`` element."""
    children = walk(el, _RX_FILL, path)
    where = f"{path}/FillStatus"
    name, status = only_child(children["FillStatus"][0], _FILL_STATUS, where)
    where = f"{where}/{name}"
    note = opt_text(walk(status, _STATUS, where), "Note", where, FILL_NOTE_MAX)
    dispensed = children.get("MedicationDispensed")
    return RxFill(
        status=name,
        patient=parse_patient(children["Patient"][0], f"{path}/Patient"),
        pharmacy=parse_pharmacy(children["Pharmacy"][0], f"{path}/Pharmacy"),
        prescriber=parse_prescriber(children["Prescriber"][0], f"{path}/Prescriber"),
        medication_prescribed=parse_medication_prescribed(
            children["MedicationPrescribed"][0], f"{path}/MedicationPrescribed"
        ),
        medication_dispensed=None
        if dispensed is None
        else parse_medication_line(dispensed[0], f"{path}/MedicationDispensed"),
        note=note,
    )
