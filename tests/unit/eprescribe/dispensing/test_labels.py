"""The prescription label's content rules: discard date, cautions, auxiliary warnings from the
drug reference, and the canonical text the product check compares."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from eprescribe.dispensing.barcodes import rx_barcode_text
from eprescribe.dispensing.labels import (
    FEDERAL_TRANSFER_CAUTION,
    LabelContent,
    auxiliary_warnings,
    cautionary_statements,
    discard_after,
    label_fields,
    label_lines,
    label_text,
)
from eprescribe.drugs import SCHEDULE_CODES, Drug, DrugReference, Ingredient

FILLED = dt.date(2026, 12, 6)
DROWSY = (
    "May cause drowsiness. Alcohol may intensify this effect. Use care when operating a car "
    "or dangerous machinery."
)


@pytest.fixture(scope="module")
def reference() -> DrugReference:
    return DrugReference.bundled()


def drug(reference: DrugReference, name: str) -> Drug:
    found = reference.by_name(name)
    assert found is not None, name
    return found


def content(**changes: Any) -> LabelContent:
    base = LabelContent(
        pharmacy_name="Riverbend Community Pharmacy",
        pharmacy_address=("120 Main Street", "Riverbend, MT 59000"),
        pharmacy_phone="(406) 555-0142",
        rx_number="1000123",
        fill_date=FILLED,
        fill_number=0,
        refills_left=3,
        patient_name="Jane Testpatient",
        drug_description="atorvastatin calcium tablet",
        strength="20 mg",
        ndc="12345-6789-01",
        manufacturer="Example Generics",
        quantity=Decimal("30"),
        quantity_unit="tablets",
        directions="Take 1 tablet by mouth once daily at bedtime.",
        prescriber_name="Alan Example, MD",
        discard_after=dt.date(2027, 12, 6),
    )
    return dataclasses.replace(base, **changes)


# --- discard-after date ---


def test_discard_after_is_one_year_from_the_fill_without_an_expiry() -> None:
    assert discard_after(FILLED, None) == dt.date(2027, 12, 6)


def test_discard_after_is_the_expiry_when_that_comes_first() -> None:
    assert discard_after(FILLED, dt.date(2027, 3, 31)) == dt.date(2027, 3, 31)


def test_discard_after_is_one_year_when_the_expiry_is_later() -> None:
    assert discard_after(FILLED, dt.date(2029, 1, 31)) == dt.date(2027, 12, 6)


def test_a_fill_on_29_february_is_discarded_on_28_february() -> None:
    assert discard_after(dt.date(2028, 2, 29), None) == dt.date(2029, 2, 28)


# --- cautions ---


def test_the_transfer_caution_is_the_federal_wording() -> None:
    assert FEDERAL_TRANSFER_CAUTION == (
        "Caution: Federal law prohibits the transfer of this drug to any person other than "
        "the patient for whom it was prescribed."
    )


@pytest.mark.parametrize("schedule", ["CII", "CIII", "CIV"])
def test_schedules_two_to_four_carry_the_transfer_caution(schedule: str) -> None:
    code = SCHEDULE_CODES[schedule]
    assert cautionary_statements(code) == (FEDERAL_TRANSFER_CAUTION,)
    assert FEDERAL_TRANSFER_CAUTION in label_lines(content(dea_schedule=code))


@pytest.mark.parametrize("schedule", [SCHEDULE_CODES["CV"], None])
def test_schedule_five_and_uncontrolled_drugs_do_not(schedule: str | None) -> None:
    assert cautionary_statements(schedule) == ()
    assert FEDERAL_TRANSFER_CAUTION not in label_lines(content(dea_schedule=schedule))


def test_the_schedule_prints_beside_the_discard_date() -> None:
    lines = label_lines(content(dea_schedule=SCHEDULE_CODES["CIV"]))
    assert "Discard after: 12/06/2027 | Schedule C-IV" in lines


def test_a_schedule_one_substance_gets_no_label() -> None:
    with pytest.raises(ValueError, match="Schedule I"):
        content(dea_schedule=SCHEDULE_CODES["CI"])


# --- auxiliary warnings from the drug reference ---


def test_warfarin_warns_about_pain_relievers_and_vitamin_k(reference: DrugReference) -> None:
    assert auxiliary_warnings(reference, drug(reference, "warfarin sodium 5 MG Oral Tablet")) == (
        "Do not take aspirin, ibuprofen or other pain relievers without asking your doctor or "
        "pharmacist.",
        "Keep the amount of vitamin K in your diet (such as green leafy vegetables) steady.",
    )


def test_an_oral_tetracycline_gets_its_three_warnings(reference: DrugReference) -> None:
    warnings = auxiliary_warnings(
        reference, drug(reference, "doxycycline hyclate 100 MG Oral Tablet")
    )
    assert warnings == (
        "Do not take dairy products, antacids, or iron or calcium supplements within 2 hours "
        "of this medication.",
        "Avoid prolonged exposure to sunlight or sunlamps.",
        "Finish all of this medication unless your prescriber tells you otherwise.",
    )


def test_an_opioid_with_acetaminophen_warns_of_both(reference: DrugReference) -> None:
    name = "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet"
    assert auxiliary_warnings(reference, drug(reference, name)) == (
        DROWSY,
        "Contains acetaminophen. Do not take with other products containing acetaminophen.",
    )


def test_a_benzodiazepine_causes_drowsiness(reference: DrugReference) -> None:
    warnings = auxiliary_warnings(reference, drug(reference, "alprazolam 0.5 MG Oral Tablet"))
    assert warnings == (DROWSY,)


def test_metronidazole_forbids_alcohol(reference: DrugReference) -> None:
    warnings = auxiliary_warnings(reference, drug(reference, "metronidazole 500 MG Oral Tablet"))
    assert warnings[0] == (
        "Do not drink alcohol while taking this medication and for 3 days after the last dose."
    )
    assert "Finish all of this medication unless your prescriber tells you otherwise." in warnings


def test_an_oral_nsaid_is_taken_with_food_but_a_topical_one_is_not(
    reference: DrugReference,
) -> None:
    oral = auxiliary_warnings(reference, drug(reference, "ibuprofen 600 MG Oral Tablet"))
    gel = auxiliary_warnings(reference, drug(reference, "diclofenac sodium 10 MG/ML Topical Gel"))
    assert oral == ("Take with food.",)
    assert gel == ("For external use only.",)


def test_modified_release_forms_are_swallowed_whole(reference: DrugReference) -> None:
    name = "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"
    warnings = auxiliary_warnings(reference, drug(reference, name))
    assert warnings == ("Take with food.", "Swallow whole. Do not crush or chew.")


def test_a_drug_without_warnings_gets_none(reference: DrugReference) -> None:
    assert auxiliary_warnings(reference, drug(reference, "lisinopril 10 MG Oral Tablet")) == ()


def test_a_product_the_bundled_list_lacks_gets_its_class_warnings(
    reference: DrugReference,
) -> None:
    # An imported NSAID nobody listed: the class is what carries the warning.
    imported = Drug(
        name="examprofen 100 MG Oral Tablet",
        ingredients=(Ingredient("examprofen", Decimal(100), "MG"),),
        dose_form="Oral Tablet",
        route="oral",
        classes=frozenset({"nsaid"}),
        dea_schedule=None,
    )
    assert auxiliary_warnings(reference, imported) == ("Take with food.",)


# --- the canonical text ---


def test_label_lines_are_in_label_order() -> None:
    label = content(
        dea_schedule=SCHEDULE_CODES["CIII"],
        fill_number=2,
        refills_left=1,
        auxiliary_warnings=(DROWSY,),
    )
    assert label_lines(label) == (
        "Riverbend Community Pharmacy",
        "120 Main Street, Riverbend, MT 59000",
        "Phone: (406) 555-0142",
        "Rx: 1000123 | Filled: 12/06/2026 (refill 2)",
        "Jane Testpatient",
        "Take 1 tablet by mouth once daily at bedtime.",
        "atorvastatin calcium tablet 20 mg",
        "NDC: 12345-6789-01 | Mfr: Example Generics",
        "Qty: 30 tablets | Refills left: 1",
        "Prescriber: Alan Example, MD",
        "Discard after: 12/06/2027 | Schedule C-III",
        FEDERAL_TRANSFER_CAUTION,
        DROWSY,
    )
    assert [field for field, _ in label_fields(label)] == [
        "pharmacy",
        "address",
        "address",
        "rx",
        "patient",
        "directions",
        "drug",
        "product",
        "quantity",
        "prescriber",
        "discard_after",
        "caution",
        "auxiliary",
    ]


def test_label_text_is_the_lines_one_per_line() -> None:
    label = content()
    text = label_text(label)
    assert text.splitlines() == list(label_lines(label))
    assert text.endswith("\n")


def test_the_original_fill_says_so() -> None:
    assert "Rx: 1000123 | Filled: 12/06/2026 (original)" in label_lines(content())


def test_a_strength_the_description_states_is_not_repeated() -> None:
    label = content(drug_description="atorvastatin 20 MG Oral Tablet", strength="20 mg")
    assert "atorvastatin 20 MG Oral Tablet" in label_lines(label)


def test_without_a_manufacturer_the_ndc_stands_alone() -> None:
    assert "NDC: 12345-6789-01" in label_lines(content(manufacturer=None))


@pytest.mark.parametrize(
    ("given", "printed"), [("12345678901", "12345-6789-01"), ("1234-5678-90", "01234-5678-90")]
)
def test_the_ndc_is_printed_in_the_5_4_2_form(given: str, printed: str) -> None:
    assert content(ndc=given).ndc == printed


def test_an_ambiguous_ndc_is_refused() -> None:
    with pytest.raises(ValueError, match="NDC"):
        content(ndc="1234567890")


@pytest.mark.parametrize(("quantity", "printed"), [("30.0", "30"), ("2.5", "2.5"), ("1E+2", "100")])
def test_quantities_print_plainly(quantity: str, printed: str) -> None:
    lines = label_lines(content(quantity=Decimal(quantity), quantity_unit="mL"))
    assert f"Qty: {printed} mL | Refills left: 3" in lines


def test_whitespace_in_a_sig_collapses_so_the_text_survives_the_pdf() -> None:
    label = content(directions="Take 1 tablet\n  by mouth\tdaily.")
    assert "Take 1 tablet by mouth daily." in label_lines(label)


def test_a_warning_given_twice_prints_once() -> None:
    label = content(auxiliary_warnings=(DROWSY, DROWSY))
    assert label_lines(label).count(DROWSY) == 1


def test_the_barcode_text_is_rx_and_the_number() -> None:
    assert rx_barcode_text("1000123") == "RX1000123"
    assert content().barcode_text == "RX1000123"


@pytest.mark.parametrize("rx_number", ["", "100 0123", "1000123\n"])
def test_an_rx_number_that_cannot_be_a_barcode_is_refused(rx_number: str) -> None:
    with pytest.raises(ValueError, match="Rx number"):
        content(rx_number=rx_number)


@pytest.mark.parametrize(
    "changes",
    [
        {"patient_name": " "},
        {"pharmacy_phone": ""},
        {"directions": ""},
        {"pharmacy_address": ()},
        {"quantity": Decimal(0)},
        {"refills_left": -1},
        {"discard_after": FILLED - dt.timedelta(days=1)},
    ],
)
def test_an_incomplete_label_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"required|positive|negative|before"):
        content(**changes)
