"""A fill's prescription label: its :class:`~eprescribe.dispensing.labels.LabelContent` built
from the prescription, the fill, the pharmacy and the drug reference; printed while filling;
fixed at the submit.

Printing the PDF while the fill is ``filling`` stores the label's canonical text on the fill
(``fills.label_text``, ``label_printed_at``). The submit needs that label (a
:data:`~.store.SUBMIT_CHECKS` entry, :func:`printed_check`): printed, and still the label of
the fill as it stands (a product scanned again or a quantity counted again after the print
changes the label, which is then printed again). From the submit on the text does not change,
so the pharmacist's product check compares exactly what was printed.

The label reads nothing that changes while a fill is open but the fill's product and count:
the fill date is the day the fill started, so a label printed one day and submitted the next
is the same label.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules
from eprescribe.dispensing.labels import (
    LabelContent,
    auxiliary_warnings,
    discard_after,
    label_text,
)
from eprescribe.drugs import Drug, DrugReference
from eprescribe.ncpdp import MedicationPrescribed, Patient, Prescriber, from_json
from eprescribe.ncpdp.types import Name
from eprescribe.verification import VerificationError

from ..admin.models import Pharmacy
from ..prescriptions.models import Prescription as PrescriptionRow
from . import store
from .models import Fill as FillRow

#: what the submit asks for while the label is missing
PRINTED = "the label, printed"
CHANGED = "the label, printed again (the product or the count changed after it was printed)"
#: the drug reference of a fill's unit of work, as the store puts it in ``Session.info``
REFERENCE = store.REFERENCE_INFO

#: NCI quantity units as a label says them: (one, several)
UNITS: dict[str, tuple[str, str]] = {
    "C48542": ("tablet", "tablets"),
    "C48480": ("capsule", "capsules"),
    "C28254": ("mL", "mL"),
    "C48155": ("g", "g"),
    "C64933": ("each", "each"),
    "C48524": ("patch", "patches"),
}


def register() -> None:
    """Plug the label into the fill flow's submit (idempotent)."""
    if printed_check not in store.SUBMIT_CHECKS:
        store.SUBMIT_CHECKS.append(printed_check)


def unit_words(code: str, quantity: Decimal) -> str:
    one, several = UNITS.get(code, (code, code))
    return one if quantity == 1 else several


def person(name: Name | None) -> str:
    """A name as a label prints it: first, middle, last, suffix."""
    if name is None:
        return ""
    parts = (name.prefix, name.first, name.middle, name.last)
    text = " ".join(p for p in parts if p)
    return f"{text}, {name.suffix}" if name.suffix else text


@dataclass(frozen=True, slots=True)
class Order:
    """What the label and the product check read of the prescription as written."""

    patient_name: str
    prescriber_name: str
    medication: MedicationPrescribed


def order_of(rx: PrescriptionRow) -> Order:
    patient = from_json(Patient, rx.patient)
    prescriber = from_json(Prescriber, rx.prescriber)
    return Order(
        person(patient.name),
        person(prescriber.name),
        from_json(MedicationPrescribed, rx.medication),
    )


def content_of(
    session: Session, fill: FillRow, rx: PrescriptionRow, reference: DrugReference
) -> LabelContent:
    """The fill's label as it stands. Refused (VerificationError) until the product is
    scanned and counted, and while the pharmacy has no address or phone for its labels."""
    if fill.ndc11 is None or fill.quantity is None:
        raise VerificationError(
            "label_not_ready", "The label is made once the product is scanned and counted."
        )
    pharmacy = session.get(Pharmacy, fill.pharmacy_id)
    if pharmacy is None or not pharmacy.address or not pharmacy.phone:
        raise VerificationError(
            "pharmacy_contact_missing",
            "The pharmacy's address and phone number for its labels are not set: the operator "
            "sets them (telepharm pharmacy set-contact).",
        )
    order = order_of(rx)
    quantity = Decimal(fill.quantity)
    drug = reference.by_ndc(fill.ndc11)
    filled = fill.started_at.astimezone(dt.UTC).date()
    schedule = drug.dea_schedule if drug is not None else rx.dea_schedule
    try:
        return _content(pharmacy, fill, rx, order, quantity, drug, filled, schedule, reference)
    except ValueError as exc:  # what a label cannot print (an Rx number, an NDC, a name)
        raise VerificationError("label_invalid", f"The label cannot be made: {exc}.") from None


def _content(
    pharmacy: Pharmacy,
    fill: FillRow,
    rx: PrescriptionRow,
    order: Order,
    quantity: Decimal,
    drug: Drug | None,
    filled: dt.date,
    schedule: str | None,
    reference: DrugReference,
) -> LabelContent:
    medication = order.medication
    assert pharmacy.address is not None
    assert pharmacy.phone is not None
    assert fill.ndc11 is not None
    return LabelContent(
        pharmacy_name=pharmacy.name,
        pharmacy_address=tuple(pharmacy.address.splitlines()),
        pharmacy_phone=pharmacy.phone,
        rx_number=rx.rx_number or "",
        fill_date=filled,
        fill_number=fill.number,
        refills_left=max(0, medication.number_of_refills - fill.number),
        patient_name=order.patient_name,
        drug_description=fill.drug or (drug.name if drug else rx.drug_description),
        strength="",
        ndc=fill.ndc11,
        manufacturer=None,
        quantity=quantity,
        quantity_unit=unit_words(fill.unit, quantity),
        directions=medication.sig.text,
        prescriber_name=order.prescriber_name,
        discard_after=discard_after(filled, fill.expiry),
        dea_schedule=schedule,
        auxiliary_warnings=auxiliary_warnings(reference, drug) if drug is not None else (),
    )


def load(
    session: Session, pharmacy_id: uuid.UUID, fill_id: uuid.UUID, *, lock: bool = False
) -> tuple[FillRow, PrescriptionRow] | None:
    """The pharmacy's fill and its prescription (None: not the pharmacy's)."""
    query = select(FillRow).where(FillRow.id == fill_id, FillRow.pharmacy_id == pharmacy_id)
    if lock:
        query = query.with_for_update()
    fill = session.scalar(query)
    rx = None if fill is None else session.get(PrescriptionRow, fill.prescription_id)
    return None if fill is None or rx is None else (fill, rx)


def print_label(
    session: Session,
    pharmacy_id: uuid.UUID,
    fill_id: uuid.UUID,
    reference: DrugReference,
    now: dt.datetime,
    *,
    by_staff: bool = True,
) -> tuple[LabelContent, bool] | None:
    """The label to print, and whether this print is the fill's (while ``filling``, printed by
    a technician or pharmacist, not a system reading it: its text is kept on the fill, locked,
    for the submit and the product check). None: no such fill."""
    found = load(session, pharmacy_id, fill_id, lock=by_staff)
    if found is None:
        return None
    fill, rx = found
    content = content_of(session, fill, rx, reference)
    if not by_staff or fill.state != rules.FillState.FILLING.value:
        return content, False
    fill.label_text = label_text(content)
    fill.label_printed_at = now
    return content, True


def printed_check(session: Session, fill: rules.Fill) -> list[str]:
    """What the submit still needs of the label: printed, and the label of the fill as it
    stands (the product and the count it was printed with)."""
    row = session.get(FillRow, fill.id)
    if row is None or row.label_printed_at is None or row.label_text is None:
        return [PRINTED]
    reference: DrugReference | None = session.info.get(REFERENCE)
    rx = session.get(PrescriptionRow, fill.prescription_id)
    if reference is None or rx is None:
        return []
    try:
        now = label_text(content_of(session, row, rx, reference))
    except VerificationError as exc:
        return [f"{PRINTED} ({exc.detail})"]
    return [] if now == row.label_text else [CHANGED]


def prescription_view(rx: PrescriptionRow) -> dict[str, Any]:
    """The prescription as the product check compares it with the label and the scan."""
    order = order_of(rx)
    medication = order.medication
    product = medication.product_code
    return {
        "patient_name": order.patient_name,
        "prescriber_name": order.prescriber_name,
        "drug_description": medication.drug_description,
        "ndc": product.code if product is not None and product.qualifier == "ND" else None,
        "quantity": str(medication.quantity.value),
        "unit": medication.quantity.unit_code,
        "days_supply": medication.days_supply,
        "substitutions": medication.substitutions,
        "refills": medication.number_of_refills,
        "sig": medication.sig.text,
        "written_date": rx.written_date.isoformat(),
        "dea_schedule": rx.dea_schedule,
    }
