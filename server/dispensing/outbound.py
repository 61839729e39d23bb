"""What the dispensing feature sends to prescribers: RxFill, written to the outbox in the unit
of work of the fill's change (through ``server.prescriptions.outbound.send``, like every
message about a prescription, so they leave in order)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules
from eprescribe.ncpdp import ProductCode, Quantity
from eprescribe.ncpdp.outbound import MedicationLine, OriginalPrescription, rx_fill
from eprescribe.ncpdp.outbound.rxfill import DISPENSED_QUANTITY

from ..prescriptions import outbound as prescriptions
from ..prescriptions.outbound import SOFTWARE, Sent

RX_FILL = "RxFill"
#: ProductCode/Qualifier of an NDC
_NDC = "ND"


def dispensed_line(original: OriginalPrescription, fill: rules.Fill) -> MedicationLine | None:
    """What was handed over, as a MedicationDispensed: the prescription's line with the
    scanned NDC, the quantity counted and the day it was handed over."""
    if fill.product is None or fill.quantity is None or fill.state is not rules.FillState.COMPLETED:
        return None
    line = MedicationLine.of(
        original.medication,
        last_fill_date=(fill.ended_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date(),
    )
    return dataclasses.replace(
        line,
        product_code=ProductCode(fill.product.ndc11, _NDC),
        quantity=Quantity(fill.quantity, DISPENSED_QUANTITY, fill.unit),
        note=f"Lot {fill.product.lot}" if fill.product.lot else None,
    )


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
