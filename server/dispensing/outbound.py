"""What the dispensing feature sends to prescribers: RxFill, written to the outbox in the unit
of work of the fill's change (through ``server.prescriptions.outbound.send``, like every
message about a prescription, so they leave in order)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules
from eprescribe.drugs.ndc import ndc_candidates
from eprescribe.ncpdp import ProductCode, Quantity
from eprescribe.ncpdp.outbound import MedicationLine, OriginalPrescription, rx_fill
from eprescribe.ncpdp.outbound.rxfill import DISPENSED_QUANTITY
from eprescribe.ncpdp.outbound.write import OutboundError, an_text
from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX

from ..prescriptions import outbound as prescriptions
from ..prescriptions.outbound import SOFTWARE, Sent

RX_FILL = "RxFill"
#: ProductCode/Qualifier of an NDC
_NDC = "ND"


def dispensed_line(original: OriginalPrescription, fill: rules.Fill) -> MedicationLine | None:
    """What was handed over, as a MedicationDispensed: the prescription's line with the
    scanned NDC, the quantity counted, the days it lasts and the day it was handed over.
    Another product than the one prescribed (an equivalent the prescription allowed) is
    described as the drug reference names it (when the standard's length allows the name),
    without the prescribed product's drug code."""
    product = fill.product
    if product is None or fill.quantity is None or fill.state is not rules.FillState.COMPLETED:
        return None
    prescribed = original.medication
    line = MedicationLine.of(
        prescribed,
        last_fill_date=(fill.ended_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date(),
    )
    other = not _is_prescribed_product(prescribed.product_code, product.ndc11)
    if other and product.drug and _describable(product.drug):
        line = dataclasses.replace(line, drug_description=product.drug, drug_db_code=None)
    return dataclasses.replace(
        line,
        product_code=ProductCode(product.ndc11, _NDC),
        quantity=Quantity(fill.quantity, DISPENSED_QUANTITY, fill.unit),
        days_supply=rules.days_supplied(
            prescribed.days_supply, prescribed.quantity.value, fill.quantity
        ),
        note=f"Lot {product.lot}" if product.lot else None,
    )


def _describable(name: str) -> bool:
    """Whether ``name`` can be a DrugDescription as it is (some of the reference's names are
    longer than the standard allows: the prescribed description is kept then)."""
    try:
        an_text(name, DRUG_DESCRIPTION_MAX, "DrugDescription")
    except OutboundError:
        return False
    return True


def _is_prescribed_product(code: ProductCode | None, ndc11: str) -> bool:
    return code is not None and code.qualifier == _NDC and ndc11 in ndc_candidates(code.code)


def rx_fill_message(
    session: Session, due: rules.RxFillDue, rx_number: str | None, now: dt.datetime
) -> Sent:
    """The RxFill ``due`` asks for, to the NewRx's sender, naming the pharmacy's Rx number."""

    def build(original: OriginalPrescription, message_id: str, at: dt.datetime) -> bytes:
        original = dataclasses.replace(original, rx_reference_number=rx_number)
        return rx_fill(
            original,
            due.status.value,
            dispensed_line(original, due.fill),
            message_id=message_id,
            sent_time=at,
            software=SOFTWARE,
            note=due.note,
        )

    return prescriptions.send(session, due.fill.prescription_id, RX_FILL, build, now)
