"""RxFill as the hub sends it is valid SCRIPT 2017071: built from the stored prescription and a
fill, it parses again with the hub's own validator into the same values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from eprescribe.ncpdp import ProductCode, Quantity, parse_message
from eprescribe.ncpdp.outbound import MedicationLine, RxFill, rx_fill
from eprescribe.ncpdp.outbound.rxfill import FILL_NOTE_MAX
from tests.unit.eprescribe.ncpdp.test_outbound import HUB, SENT, expected_header, stored


def dispensed() -> MedicationLine:
    line = MedicationLine.of(stored().medication, last_fill_date=dt.date(2025, 1, 20))
    return dataclasses.replace(
        line,
        product_code=ProductCode("11111010430", "ND"),
        quantity=Quantity(Decimal(40), "87", "C48542"),
        note="Lot B7",
    )


@pytest.mark.parametrize("status", ["Dispensed", "PartiallyDispensed"])
def test_a_dispensed_fill_reads_back_with_what_was_dispensed(status: str) -> None:
    sent = rx_fill(
        stored(), status, dispensed(), message_id="HUB-OUT-0001", sent_time=SENT, software=HUB
    )
    message = parse_message(sent)
    assert message.transaction == "RxFill"
    assert message.header == expected_header("NEWRX-0001")
    body = message.body
    assert isinstance(body, RxFill)
    assert body.status == status
    assert body.medication_prescribed == stored().medication
    assert body.medication_dispensed == dispensed()
    assert (body.patient, body.prescriber) == (stored().patient, stored().prescriber)


def test_not_dispensed_names_no_product_and_its_note_is_shortened() -> None:
    sent = rx_fill(
        stored(),
        "NotDispensed",
        None,
        message_id="HUB-OUT-0001",
        sent_time=SENT,
        software=HUB,
        note="Not collected within 14 days " * 5,
    )
    body = parse_message(sent).body
    assert isinstance(body, RxFill)
    assert (body.status, body.medication_dispensed) == ("NotDispensed", None)
    assert body.note is not None
    assert len(body.note) == FILL_NOTE_MAX


def test_a_dispensed_fill_without_its_product_is_refused() -> None:
    with pytest.raises(ValueError, match="names what was dispensed"):
        rx_fill(stored(), "Dispensed", None, message_id="X", sent_time=SENT, software=HUB)
    with pytest.raises(ValueError, match="unknown fill status"):
        rx_fill(stored(), "Lost", None, message_id="X", sent_time=SENT, software=HUB)
