"""What an RxFill says was dispensed (``MedicationDispensed``), from a fill handed over."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

from eprescribe.dispensing import fills as rules
from eprescribe.ncpdp import Quantity
from eprescribe.ncpdp.outbound import OriginalPrescription
from server.dispensing.outbound import dispensed_line
from tests.unit.eprescribe.ncpdp.test_outbound import stored

HANDED_OVER = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
#: the reference's name of the generic of a brand of mixed amphetamine salts, over the 105
#: characters a DrugDescription may have (names of that length are in the bundled reference)
LONG_NAME = (
    "amphetamine aspartate 2.5 MG / amphetamine sulfate 2.5 MG / dextroamphetamine saccharate"
    " 2.5 MG / dextroamphetamine sulfate 2.5 MG Oral Tablet"
)


def completed(ndc11: str, drug: str | None, quantity: str) -> rules.Fill:
    return rules.Fill(
        id=uuid.uuid4(),
        prescription_id=uuid.uuid4(),
        pharmacy_id=uuid.uuid4(),
        number=0,
        state=rules.FillState.COMPLETED,
        quantity_owed=Decimal(quantity),
        unit="C48542",
        history=(),
        quantity=Decimal(quantity),
        product=rules.Product(ndc11=ndc11, lot="L1", drug=drug),
        ended_at=HANDED_OVER,
    )


def prescription(days: int = 30, quantity: int = 60) -> OriginalPrescription:
    original = stored()
    medication = dataclasses.replace(
        original.medication,
        days_supply=days,
        quantity=Quantity(Decimal(quantity), "38", "C48542"),
    )
    return dataclasses.replace(original, medication=medication)


def test_the_prescribed_product_keeps_its_description_and_codes() -> None:
    original = prescription()
    code = original.medication.product_code
    assert code is not None
    line = dispensed_line(original, completed(code.code, "another name", "60"))
    assert line is not None
    assert line.drug_description == original.medication.drug_description
    assert line.drug_db_code == original.medication.drug_db_code
    assert (line.days_supply, line.last_fill_date, line.note) == (30, HANDED_OVER.date(), "Lot L1")


def test_an_equivalent_is_described_by_the_reference_and_a_partial_fill_lasts_its_share() -> None:
    line = dispensed_line(prescription(), completed("99999000303", "TESTDRUG 10 MG Tab", "40"))
    assert line is not None
    assert (line.drug_description, line.drug_db_code) == ("TESTDRUG 10 MG Tab", None)
    assert line.product_code is not None
    assert line.product_code.code == "99999000303"
    assert (line.quantity.value, line.days_supply) == (Decimal(40), 20)  # 30 days x 40/60


def test_a_reference_name_too_long_for_the_standard_keeps_the_prescribed_description() -> None:
    assert len(LONG_NAME) > 105
    original = prescription()
    line = dispensed_line(original, completed("99999000303", LONG_NAME, "60"))
    assert line is not None
    assert line.drug_description == original.medication.drug_description


def test_a_tiny_partial_fill_lasts_at_least_a_day() -> None:
    line = dispensed_line(prescription(days=30, quantity=60), completed("99999000303", None, "1"))
    assert line is not None
    assert line.days_supply == 1
