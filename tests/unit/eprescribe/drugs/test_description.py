"""Tolerant description matching, and refusal when a description is ambiguous."""

from __future__ import annotations

import pytest

from eprescribe.drugs import DrugReference


@pytest.mark.parametrize(
    "text",
    [
        "Sertraline HCl 50mg tablet",
        "SERTRALINE 50 MG ORAL TABLET",
        "sertraline hydrochloride 50 MG Oral Tablet",
        "50 mg sertraline tablets",
        "sertraline 50 milligrams tab",
        "Sertraline 50 mg",
    ],
)
def test_sertraline_spellings(reference: DrugReference, text: str) -> None:
    found = reference.by_description(text)
    assert found is not None
    assert found.name == "sertraline 50 MG Oral Tablet"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "hydrocodone bitartrate 5 MG / acetaminophen 325 MG Oral Tablet",
            "acetaminophen 325 MG / hydrocodone bitartrate 5 MG Oral Tablet",
        ),
        (
            "Hydrocodone-APAP 10-325 mg tab",
            "acetaminophen 325 MG / hydrocodone bitartrate 10 MG Oral Tablet",
        ),
        ("amoxicillin 500 MG Oral Capsule", "amoxicillin 500 MG Oral Capsule"),
        ("Amoxicillin 500mg caps", "amoxicillin 500 MG Oral Capsule"),
        (
            "amoxicillin-clavulanate 875-125 mg tablet",
            "amoxicillin 875 MG / clavulanate 125 MG Oral Tablet",
        ),
        ("amoxicillin 400 mg/5 mL suspension", "amoxicillin 80 MG/ML Oral Suspension"),
        ("Levothyroxine 50 mcg tab", "levothyroxine sodium 0.05 MG Oral Tablet"),
        ("levothyroxine sodium 50 ug tablet", "levothyroxine sodium 0.05 MG Oral Tablet"),
        ("metformin 500 mg tablet", "metformin hydrochloride 500 MG Oral Tablet"),
        (
            "Metformin ER 500 mg",
            "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        ),
        (
            "metformin extended release 500 MG tablets",
            "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        ),
        (
            "bupropion XL 150 mg",
            "24 HR bupropion hydrochloride 150 MG Extended Release Oral Tablet",
        ),
        (
            "bupropion SR 150mg tablet",
            "12 HR bupropion hydrochloride 150 MG Extended Release Oral Tablet",
        ),
        (
            "Pantoprazole 40 mg tablet",
            "pantoprazole sodium 40 MG Delayed Release Oral Tablet",
        ),
        (
            "omeprazole DR 20 mg capsule",
            "omeprazole 20 MG Delayed Release Oral Capsule",
        ),
        ("insulin glargine 100 units/mL pen", "insulin glargine 100 UNT/ML Pen Injector"),
        (
            "insulin glargine 100 UNT/ML Injectable Solution",
            "insulin glargine 100 UNT/ML Injectable Solution",
        ),
        (
            "albuterol 90 mcg/actuation HFA inhaler",
            "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
        ),
        ("fentanyl 25 mcg/hr patch", "72 HR fentanyl 0.025 MG/HR Transdermal System"),
        ("ketoconazole 2% cream", "ketoconazole 20 MG/ML Topical Cream"),
        ("timolol maleate 0.5% eye drops", "timolol 5 MG/ML Ophthalmic Solution"),
        (
            "lisinopril/HCTZ 20-12.5 mg",
            "hydrochlorothiazide 12.5 MG / lisinopril 20 MG Oral Tablet",
        ),
        (
            "dextroamphetamine-amphetamine 20 mg tablet",
            "amphetamine aspartate 5 MG / amphetamine sulfate 5 MG / "
            "dextroamphetamine saccharate 5 MG / dextroamphetamine sulfate 5 MG Oral Tablet",
        ),
        (
            "potassium chloride 20 mEq ER tablet",
            "potassium chloride 20 MEQ Extended Release Oral Tablet",
        ),
        ("penicillin VK 500 mg tab", "penicillin V potassium 500 MG Oral Tablet"),
        (
            "doxycycline hyclate 100 mg capsule",
            "doxycycline hyclate 100 MG Oral Capsule",
        ),
        (
            "metoprolol succinate 50 mg",
            "24 HR metoprolol succinate 50 MG Extended Release Oral Tablet",
        ),
        ("metoprolol tartrate 50 mg", "metoprolol tartrate 50 MG Oral Tablet"),
        (
            "buprenorphine-naloxone 8-2 mg sublingual film",
            "buprenorphine 8 MG / naloxone 2 MG Sublingual Film",
        ),
        (
            "Selegiline 6 mg/24 hr transdermal patch",
            "24 HR selegiline 0.25 MG/HR Transdermal System",
        ),
        ("ondansetron ODT 4 mg", "ondansetron 4 MG Disintegrating Oral Tablet"),
        ("ondansetron 4 mg tablet", "ondansetron 4 MG Oral Tablet"),
    ],
)
def test_tolerant_matches(reference: DrugReference, text: str, name: str) -> None:
    found = reference.by_description(text)
    assert found is not None, text
    assert found.name == name


@pytest.mark.parametrize(
    "text",
    [
        "metformin 500 mg",  # tablet or extended-release tablet
        "bupropion 150 mg ER",  # 12-hour or 24-hour
        "bupropion hydrochloride 150 mg extended release tablet",
        "doxycycline 100 mg capsule",  # hyclate or monohydrate
        "metoprolol 25 mg",  # tartrate tablet or succinate ER tablet
        "ondansetron 4 mg",  # tablet or orally disintegrating tablet
        "warfarin tablet",  # no strength
        "sertraline",
        "sertraline 75 mg tablet",  # no such strength
        "sertraline 50 mg capsule",  # no such form
        "sertraline 50 mg / unknownium 10 mg tablet",  # a second strength for no known ingredient
        "Zoloft 50 mg",  # brand names are not in the reference
        "hydrocodone 5 mg tablet",  # ingredient set differs from any product
        "",
        "take one tablet by mouth daily",
    ],
)
def test_ambiguous_or_unknown_descriptions_are_refused(reference: DrugReference, text: str) -> None:
    assert reference.by_description(text) is None


def test_a_given_route_must_agree(reference: DrugReference) -> None:
    assert reference.by_description("moxifloxacin 0.5% eye drops") is not None
    assert reference.by_description("moxifloxacin 400 mg eye drops") is None


def test_every_bundled_drug_is_found_by_its_own_name(reference: DrugReference) -> None:
    missed = [
        drug.name
        for drug in reference.drugs
        if (found := reference.by_description(drug.name)) is None or found.name != drug.name
    ]
    assert missed == []


_FENTANYL_25 = "72 HR fentanyl 0.025 MG/HR Transdermal System"
_MAS_20_TABLET = (
    "amphetamine aspartate 5 MG / amphetamine sulfate 5 MG / dextroamphetamine saccharate 5 MG"
    " / dextroamphetamine sulfate 5 MG Oral Tablet"
)
_MAS_20_ER_CAPSULE = (
    "24 HR amphetamine aspartate 5 MG / amphetamine sulfate 5 MG / dextroamphetamine saccharate"
    " 5 MG / dextroamphetamine sulfate 5 MG Extended Release Oral Capsule"
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("fentanyl 25 mcg/hr patch", _FENTANYL_25),
        ("Fentanyl 25 MCG/HR transdermal patch 72 hour", _FENTANYL_25),
        ("fentanyl 0.025 mg/hr 72 hr transdermal system", _FENTANYL_25),
        ("fentanyl 12 mcg/hr patch", "72 HR fentanyl 0.012 MG/HR Transdermal System"),
        ("selegiline 0.25 mg/hr 24 hr patch", "24 HR selegiline 0.25 MG/HR Transdermal System"),
        ("amphetamine-dextroamphetamine 20 mg tablet", _MAS_20_TABLET),
        ("mixed amphetamine salts 20 mg tablet", _MAS_20_TABLET),
        ("Mixed Amphetamine Salts 20 mg oral tab", _MAS_20_TABLET),
        ("amphetamine 10 mg / dextroamphetamine 10 mg tablet", _MAS_20_TABLET),
        ("amphetamine/dextroamphetamine ER 20 mg capsule", _MAS_20_ER_CAPSULE),
        ("mixed amphetamine salts ER 20 mg capsule", _MAS_20_ER_CAPSULE),
        ("amphetamine/dextroamphetamine 24 hr 20 mg capsule", _MAS_20_ER_CAPSULE),
    ],
)
def test_rate_patches_and_mixed_amphetamine_salts(
    reference: DrugReference, text: str, name: str
) -> None:
    found = reference.by_description(text)
    assert found is not None, text
    assert found.name == name


@pytest.mark.parametrize(
    "text",
    [
        "mixed amphetamine salts 20 mg",  # tablet or extended-release capsule
        "amphetamine-dextroamphetamine 20 mg",
        "Adderall 20 mg",  # brand names are not in the reference
        "mixed amphetamine salts 25 mg tablet",  # no such total strength
        "fentanyl 30 mcg/hr patch",  # no such rate
        "fentanyl 25 mcg/hr 24 hr patch",  # wrong interval
        "amphetamine 20 mg tablet",  # one ingredient of the mixture only
    ],
)
def test_ambiguous_patch_and_amphetamine_descriptions_are_refused(
    reference: DrugReference, text: str
) -> None:
    assert reference.by_description(text) is None
