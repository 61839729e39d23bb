from typing import Any

import pytest

from eprescribe.checks import Severity, build_context
from eprescribe.ncpdp import NewRx, parse_message
from tests.support.script_samples import newrx_xml, stored_samples

from .helpers import RECEIVED, REFERENCE, context, findings

CODE = "PRESCRIPTION_INCONSISTENT"
AMOXICILLIN = "amoxicillin 500 MG Oral Capsule"
LISINOPRIL = "lisinopril 10 MG Oral Tablet"
DRUG_CODED = "Body/NewRx/MedicationPrescribed/DrugCoded"
STRENGTH = f"{DRUG_CODED}/Strength"


def inconsistencies(**message: Any) -> list[dict[str, Any]]:
    ctx = context(with_reference=True, **message)
    found = findings(ctx, CODE)
    assert all(f.severity is Severity.WARNING for f in found)
    return [dict(f.evidence) for f in found]


def contradictions(**message: Any) -> list[str]:
    return [evidence["contradiction"] for evidence in inconsistencies(**message)]


def coded_strength(value: str, unit: str = "C28253", form: str = "C42998") -> dict[str, str]:
    """A Strength element for a message with a given description (which has none)."""
    return {
        DRUG_CODED: f"<Strength><StrengthValue>{value}</StrengthValue>"
        f"<StrengthForm><Code>{form}</Code></StrengthForm>"
        f"<StrengthUnitOfMeasure><Code>{unit}</Code></StrengthUnitOfMeasure></Strength>"
    }


# --- the directions name another drug ---


def test_sig_naming_another_drug() -> None:
    ctx = context(
        with_reference=True,
        drug_description=AMOXICILLIN,
        sig_text="Take 1 capsule of ibuprofen by mouth every 8 hours with food",
    )
    [found] = findings(ctx, CODE)
    assert found.severity is Severity.WARNING
    assert found.message == (
        f'The directions say to take ibuprofen, but the prescribed drug is "{AMOXICILLIN}".'
    )
    assert found.evidence == {
        "contradiction": "sig_names_other_drug",
        "description": AMOXICILLIN,
        "sig_drug": "ibuprofen",
        "ingredients": ["amoxicillin"],
    }


@pytest.mark.parametrize(
    "sig",
    [
        "take ibuprofen 800 mg by mouth three times daily",
        "Take a tablet of ibuprofen daily",
        "take acetaminophen 500 mg every 6 hours",
        "Take 2 tablets of ibuprofen. Then 1 tablet daily",
        "Take one tab of Ibuprofen daily as needed for pain",
        "Chew 1 tablet daily; take 1-2 tablets of ibuprofen as needed",
    ],
)
def test_dosing_phrases_naming_another_drug(sig: str) -> None:
    evidence = inconsistencies(drug_description=LISINOPRIL, sig_text=sig)
    assert [e["sig_drug"] for e in evidence] in (["ibuprofen"], ["acetaminophen"])


def test_each_other_drug_is_its_own_finding() -> None:
    sig = "Take 1 tablet of ibuprofen; take 1 tablet of metformin"
    evidence = inconsistencies(drug_description=LISINOPRIL, sig_text=sig)
    assert [e["sig_drug"] for e in evidence] == ["ibuprofen", "metformin"]


@pytest.mark.parametrize(
    "sig",
    [
        "Take 1 capsule by mouth three times daily with food",
        "Take 1 capsule by mouth every 8 hours as needed",
        "Take 1 capsule of amoxicillin by mouth three times daily",  # the prescribed drug
        "Take 1 capsule of Amoxil three times daily",  # a brand of it: unknown, never counted
        "Do not take ibuprofen while on this medicine",
        "Take 1 capsule three times daily; don't take ibuprofen",
        "Take 1 capsule with aspirin",
        "Take 1 capsule daily. May take acetaminophen for fever",
        "If fever persists take acetaminophen",
        "Take 1 capsule daily (stop taking cephalexin)",
        "Avoid ibuprofen",  # named, but not as what to take
        "Use as directed",
    ],
)
def test_directions_that_name_no_other_drug_to_take(sig: str) -> None:
    assert contradictions(drug_description=AMOXICILLIN, sig_text=sig) == []


def test_synonyms_of_the_prescribed_ingredient_are_the_same_drug() -> None:
    sig = "Take 1 tablet of paracetamol every 6 hours"
    assert contradictions(drug_description="acetaminophen 500 MG Oral Tablet", sig_text=sig) == []


def test_short_names_do_not_count() -> None:
    sig = "Take 1 tablet of asa daily"  # aspirin's synonym, too short to be sure of
    assert contradictions(drug_description=LISINOPRIL, sig_text=sig) == []


def test_related_ingredient_names_do_not_count() -> None:
    sig = "Take 1 tablet of citalopram daily"
    description = "escitalopram 10 MG Oral Tablet"
    assert contradictions(drug_description=description, sig_text=sig) == []


def test_a_description_naming_no_known_ingredient_cannot_be_contradicted() -> None:
    sig = "Take 1 capsule of amoxicillin three times daily"
    assert contradictions(drug_description="Amoxil 500 mg capsule", sig_text=sig) == []


def test_every_ingredient_of_a_combination_is_the_prescribed_drug() -> None:
    description = "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet"
    sig = "Take 1 tablet of oxycodone every 6 hours"
    assert contradictions(drug_description=description, sig_text=sig) == []


def test_the_sig_needs_the_reference() -> None:
    ctx = context(drug_description=AMOXICILLIN, sig_text="Take 1 capsule of ibuprofen daily")
    assert findings(ctx, CODE) == []


# --- quantity unit and dose form ---


@pytest.mark.parametrize(
    ("unit", "name"), [("C28253", "milligrams"), ("C48155", "grams"), ("C28254", "milliliters")]
)
def test_capsules_measured_by_mass_or_volume(unit: str, name: str) -> None:
    [evidence] = inconsistencies(drug_description=AMOXICILLIN, quantity_unit=unit)
    assert evidence == {
        "contradiction": "quantity_unit_for_dose_form",
        "description": AMOXICILLIN,
        "dose_form": "capsule",
        "quantity_unit": unit,
        "quantity_unit_name": name,
    }


def test_capsules_counted_for_a_tablet() -> None:
    [found] = findings(
        context(with_reference=True, drug_description=LISINOPRIL, quantity_unit="C48480"), CODE
    )
    assert found.message == (
        f'The quantity is in capsules, but "{LISINOPRIL}" is a tablet, counted in tablets.'
    )
    assert found.evidence["dose_form"] == "tablet"
    assert found.evidence["quantity_unit_name"] == "capsules"


def test_tablets_counted_for_a_liquid() -> None:
    description = "amoxicillin 80 MG/ML Oral Suspension"
    ctx = context(with_reference=True, drug_description=description, quantity_unit="C48542")
    [found] = findings(ctx, CODE)
    assert (
        found.message == f'The quantity is in tablets, but "{description}" is an oral suspension.'
    )
    assert found.evidence["dose_form"] == "oral suspension"


def test_an_unidentified_tablet_description_still_counts() -> None:
    ctx = context(quantity_unit="C28253")  # TESTDRUG 10 MG ORAL TABLET, no reference
    [found] = findings(ctx, CODE)
    assert found.evidence["dose_form"] == "tablet"


@pytest.mark.parametrize(
    ("description", "unit"),
    [
        (AMOXICILLIN, "C48480"),  # capsules
        (AMOXICILLIN, "C64933"),  # each
        (AMOXICILLIN, "C38046"),  # unspecified
        (LISINOPRIL, "C48542"),
        ("amoxicillin 80 MG/ML Oral Suspension", "C28254"),  # mL of a liquid
        ("TESTDRUG 10 MG pen", "C28253"),  # unidentified, neither tablet nor capsule
        ("TESTDRUG 10 MG", "C28253"),  # no form at all
    ],
)
def test_fitting_or_unknowable_quantity_units(description: str, unit: str) -> None:
    assert contradictions(drug_description=description, quantity_unit=unit) == []


def test_coded_dose_form_differs() -> None:
    [evidence] = inconsistencies(replace={f"{STRENGTH}/StrengthForm/Code": "C25158"})
    assert evidence == {
        "contradiction": "dose_form_differs",
        "description": "TESTDRUG 10 MG ORAL TABLET",
        "dose_form": "tablet",
        "coded_form": "C25158",
        "coded_form_name": "capsule",
    }


def test_coded_dose_form_of_a_capsule() -> None:
    append = coded_strength("500", form="C42998")
    assert contradictions(drug_description=AMOXICILLIN, append=append) == ["dose_form_differs"]
    append = coded_strength("500", form="C25158")
    assert contradictions(drug_description=AMOXICILLIN, append=append) == []


@pytest.mark.parametrize(
    ("code", "name"), [("C42916", "capsule"), ("C42968", "patch"), ("C42993", "suppository")]
)
def test_coded_dose_forms_of_other_families(code: str, name: str) -> None:
    [evidence] = inconsistencies(replace={f"{STRENGTH}/StrengthForm/Code": code})
    assert evidence["coded_form_name"] == name


@pytest.mark.parametrize(
    "code",
    [
        "C42931",  # film coated tablet: still a tablet
        "C42927",  # extended release tablet: the family is what counts
        "C42999",  # orally disintegrating tablet
        "C61004",  # tablet for solution: not compared
        "C42986",  # solution: not compared
    ],
)
def test_coded_dose_forms_that_agree_or_are_not_compared(code: str) -> None:
    assert contradictions(replace={f"{STRENGTH}/StrengthForm/Code": code}) == []


def test_a_coded_tablet_for_a_liquid() -> None:
    description = "amoxicillin 80 MG/ML Oral Suspension"
    append = coded_strength("400", form="C42998")
    found = contradictions(drug_description=description, append=append, quantity_unit="C28254")
    assert found == ["dose_form_differs"]


# --- coded strength ---


def test_coded_strength_differs() -> None:
    ctx = context(with_reference=True, drug_description=LISINOPRIL, append=coded_strength("20"))
    [found] = findings(ctx, CODE)
    assert found.message == (
        f'The coded strength is 20 MG, but the description "{LISINOPRIL}" says 10 MG.'
    )
    assert found.evidence == {
        "contradiction": "strength_differs",
        "description": LISINOPRIL,
        "description_strength": "10 MG",
        "coded_strength": "20 MG",
        "coded_strength_value": "20",
        "coded_strength_unit": "C28253",
    }


def test_coded_strength_of_the_default_sample() -> None:
    replace = {f"{STRENGTH}/StrengthValue": "20"}
    assert contradictions(replace=replace) == ["strength_differs"]
    assert findings(context(replace=replace), CODE)  # no reference needed


@pytest.mark.parametrize(
    "fields",
    [
        {"drug_description": LISINOPRIL, "append": coded_strength("10")},
        {"drug_description": LISINOPRIL, "append": coded_strength("10000", unit="C48152")},
        {"drug_description": LISINOPRIL, "append": coded_strength("0.010", unit="C48155")},
        {"drug_description": LISINOPRIL, "append": coded_strength("ten")},  # unparseable
        {"drug_description": LISINOPRIL, "append": coded_strength("20", unit="C99999")},
        {"drug_description": "lisinopril tablet", "append": coded_strength("20")},  # none written
        {  # a combination: no one strength to compare with
            "drug_description": "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
            "append": coded_strength("5"),
        },
        {  # a concentration: 400 mg in 5 mL is not 80 mg
            "drug_description": "amoxicillin 80 MG/ML Oral Suspension",
            "append": coded_strength("400", form="C00000"),
            "quantity_unit": "C28254",
        },
    ],
)
def test_strengths_that_agree_or_cannot_be_compared(fields: dict[str, Any]) -> None:
    assert contradictions(**fields) == []


def test_missing_strength_parts_say_nothing() -> None:
    assert contradictions(drug_description=LISINOPRIL) == []  # no Strength element
    assert contradictions(omit=[f"{STRENGTH}/StrengthValue"]) == []
    assert contradictions(omit=[f"{STRENGTH}/StrengthUnitOfMeasure"]) == []


def test_several_contradictions_each_have_a_finding() -> None:
    found = contradictions(
        drug_description=AMOXICILLIN,
        quantity_unit="C28253",
        sig_text="Take 1 capsule of ibuprofen daily",
        append=coded_strength("250", form="C42998"),
    )
    assert found == [
        "sig_names_other_drug",
        "quantity_unit_for_dose_form",
        "strength_differs",
        "dose_form_differs",
    ]


# --- clean samples ---


def _sample_messages() -> dict[str, bytes]:
    return {
        **stored_samples(),
        "default": newrx_xml(),
        "controlled": newrx_xml(controlled=True),
        "structured": newrx_xml(structured_sig=True),
    }


@pytest.mark.parametrize(("name", "xml"), sorted(_sample_messages().items()))
def test_clean_samples_are_consistent(name: str, xml: bytes) -> None:
    parsed = parse_message(xml)
    assert isinstance(parsed.body, NewRx), name
    for reference in (REFERENCE, None):
        ctx = build_context(parsed.body, RECEIVED, reference=reference)
        assert findings(ctx, CODE) == [], name
