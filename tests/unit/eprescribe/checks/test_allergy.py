import pytest

from eprescribe.checks import CheckContext, Severity

from .helpers import codes, context, finding, findings, with_patient

AMOXICILLIN = "amoxicillin 500 MG Oral Capsule"


def amoxicillin(*allergies: str, with_reference: bool = True) -> CheckContext:
    ctx = context(
        with_reference=with_reference,
        drug_description=AMOXICILLIN,
        sig_text="Take 1 capsule by mouth three times daily",
        quantity="30",
        quantity_unit="C48480",
        days_supply="10",
    )
    return with_patient(ctx, allergies=allergies)


def test_amoxicillin_for_a_penicillin_allergic_patient() -> None:
    found = finding(amoxicillin("penicillin"), "DRUG_ALLERGY")
    assert found.severity is Severity.HARD_STOP
    assert found.evidence == {
        "allergy": "penicillin",
        "match": "class",
        "term": "penicillin",
        "drug": AMOXICILLIN,
    }


def test_ingredient_allergy_is_a_hard_stop() -> None:
    found = finding(amoxicillin("Amoxicillin (hives)"), "DRUG_ALLERGY")
    assert found.severity is Severity.HARD_STOP
    assert (found.evidence["match"], found.evidence["term"]) == ("ingredient", "amoxicillin")


def test_cross_reactivity_carries_its_own_severity() -> None:
    found = finding(amoxicillin("cephalosporins"), "DRUG_ALLERGY")
    assert found.severity is Severity.WARNING
    assert found.evidence["match"] == "cross_reactivity"


def test_one_finding_per_allergy_entry() -> None:
    found = findings(amoxicillin("penicillin", "sulfa", "cephalosporin"), "DRUG_ALLERGY")
    assert [(f.evidence["allergy"], f.severity) for f in found] == [
        ("penicillin", Severity.HARD_STOP),
        ("cephalosporin", Severity.WARNING),
    ]


@pytest.mark.parametrize("allergy", ["sulfa", "codeine", "peanuts", "latex"])
def test_unrelated_or_unknown_allergies(allergy: str) -> None:
    assert "DRUG_ALLERGY" not in codes(amoxicillin(allergy))


def test_no_allergies_no_finding() -> None:
    assert "DRUG_ALLERGY" not in codes(amoxicillin())


def test_allergy_needs_the_reference_and_a_known_drug() -> None:
    assert "DRUG_ALLERGY" not in codes(amoxicillin("penicillin", with_reference=False))
    unknown = with_patient(context(with_reference=True), allergies=("penicillin",))
    assert "DRUG_ALLERGY" not in codes(unknown)


def test_allergy_entries_are_free_text() -> None:
    assert "DRUG_ALLERGY" in codes(amoxicillin("PCN - Penicillins (rash 2019)"))
