"""What the prescription checks ask of the reference: identification, interactions,
duplication, allergies and maximum doses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from eprescribe.drugs import Drug, DrugReference, Identification

DrugLookup = Callable[[str], Drug]

SERTRALINE = "sertraline 50 MG Oral Tablet"
FLUOXETINE = "fluoxetine 20 MG Oral Capsule"
PHENELZINE = "phenelzine sulfate 15 MG Oral Tablet"
AMOXICILLIN = "amoxicillin 500 MG Oral Capsule"
SIMVASTATIN = "simvastatin 40 MG Oral Tablet"
PRAVASTATIN = "pravastatin sodium 40 MG Oral Tablet"
CLARITHROMYCIN = "clarithromycin 500 MG Oral Tablet"


def _ids(reference: DrugReference, a: Drug, b: Drug) -> list[str]:
    return [interaction.id for interaction in reference.interactions(a, b)]


def test_ssri_and_maoi_interact_both_ways(reference: DrugReference, drug: DrugLookup) -> None:
    forward = reference.interactions(drug(SERTRALINE), drug(PHENELZINE))
    backward = reference.interactions(drug(PHENELZINE), drug(SERTRALINE))
    assert forward == backward
    assert [(i.id, i.severity) for i in forward] == [("onc-04-serotonergic-maoi", "hard_stop")]
    assert "serotonin syndrome" in forward[0].message
    assert "Phansalkar" in forward[0].source


def test_unrelated_drugs_do_not_interact(reference: DrugReference, drug: DrugLookup) -> None:
    assert reference.interactions(drug(SERTRALINE), drug(AMOXICILLIN)) == []


def test_statins_and_cyp3a4_inhibitors_are_ingredient_precise(
    reference: DrugReference, drug: DrugLookup
) -> None:
    assert _ids(reference, drug(SIMVASTATIN), drug(CLARITHROMYCIN)) == ["onc-11-simvastatin-cyp3a4"]
    assert _ids(reference, drug(CLARITHROMYCIN), drug(SIMVASTATIN)) == ["onc-11-simvastatin-cyp3a4"]
    assert _ids(reference, drug(PRAVASTATIN), drug(CLARITHROMYCIN)) == []
    assert _ids(reference, drug("rosuvastatin 10 MG Oral Tablet"), drug(CLARITHROMYCIN)) == []
    atorvastatin = reference.interactions(
        drug("atorvastatin 40 MG Oral Tablet"), drug(CLARITHROMYCIN)
    )
    assert [(i.id, i.severity) for i in atorvastatin] == [
        ("onc-11b-atorvastatin-cyp3a4", "warning")
    ]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (
            "lisdexamfetamine dimesylate 30 MG Oral Capsule",
            "tranylcypromine sulfate 10 MG Oral Tablet",
            "onc-01-amphetamine-maoi",
        ),
        (
            "atazanavir 300 MG Oral Capsule",
            "omeprazole 20 MG Delayed Release Oral Capsule",
            "onc-02-atazanavir-ppi",
        ),
        (
            "febuxostat 40 MG Oral Tablet",
            "azathioprine 50 MG Oral Tablet",
            "onc-03-febuxostat-thiopurine",
        ),
        (
            "irinotecan hydrochloride 20 MG/ML Injectable Solution",
            "ketoconazole 200 MG Oral Tablet",
            "onc-05-irinotecan-cyp3a4",
        ),
        (
            "meperidine hydrochloride 50 MG Oral Tablet",
            "selegiline hydrochloride 5 MG Oral Capsule",
            "onc-06-opioid-maoi",
        ),
        (
            "amitriptyline hydrochloride 25 MG Oral Tablet",
            "isocarboxazid 10 MG Oral Tablet",
            "onc-07-tca-maoi",
        ),
        ("dofetilide 0.5 MG Oral Capsule", "azithromycin 250 MG Oral Tablet", "onc-08-qt"),
        (
            "ramelteon 8 MG Oral Tablet",
            "fluvoxamine maleate 50 MG Oral Tablet",
            "onc-09-ramelteon-fluvoxamine",
        ),
        (
            "ramelteon 8 MG Oral Tablet",
            "ciprofloxacin 500 MG Oral Tablet",
            "onc-09b-ramelteon-cyp1a2",
        ),
        ("rifampin 300 MG Oral Capsule", "darunavir 800 MG Oral Tablet", "onc-10-rifampin-pi"),
        (
            "carbamazepine 200 MG Oral Tablet",
            "atazanavir 300 MG Oral Capsule",
            "onc-10b-inducer-pi",
        ),
        (
            "lovastatin 20 MG Oral Tablet",
            "ritonavir 100 MG Oral Tablet",
            "onc-11-simvastatin-cyp3a4",
        ),
        (
            "caffeine 100 MG / ergotamine tartrate 1 MG Oral Tablet",
            "erythromycin 500 MG Oral Tablet",
            "onc-12-ergot-cyp3a4",
        ),
        (
            "tizanidine 4 MG Oral Tablet",
            "ciprofloxacin 500 MG Oral Tablet",
            "onc-13-tizanidine-cyp1a2-strong",
        ),
        (
            "tizanidine 4 MG Oral Tablet",
            "famotidine 20 MG Oral Tablet",
            "onc-13b-tizanidine-cyp1a2",
        ),
        (
            "tranylcypromine sulfate 10 MG Oral Tablet",
            "procarbazine hydrochloride 50 MG Oral Capsule",
            "onc-14-tranylcypromine-procarbazine",
        ),
        (
            "sumatriptan 50 MG Oral Tablet",
            "phenelzine sulfate 15 MG Oral Tablet",
            "onc-15-triptan-maoi",
        ),
        (
            "warfarin sodium 5 MG Oral Tablet",
            "ibuprofen 800 MG Oral Tablet",
            "bleeding-anticoagulant-nsaid",
        ),
        ("sildenafil 100 MG Oral Tablet", "nitroglycerin 0.4 MG Sublingual Tablet", "pde5-nitrate"),
        (
            "methotrexate 2.5 MG Oral Tablet",
            "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet",
            "methotrexate-trimethoprim",
        ),
        (
            "lithium carbonate 300 MG Oral Capsule",
            "hydrochlorothiazide 25 MG Oral Tablet",
            "lithium-clearance",
        ),
        (
            "spironolactone 25 MG Oral Tablet",
            "potassium chloride 20 MEQ Extended Release Oral Tablet",
            "hyperkalemia-aldosterone-antagonist-potassium",
        ),
        (
            "oxycodone hydrochloride 5 MG Oral Tablet",
            "alprazolam 1 MG Oral Tablet",
            "opioid-benzodiazepine",
        ),
    ],
)
def test_interaction_pairs(
    reference: DrugReference, drug: DrugLookup, a: str, b: str, expected: str
) -> None:
    assert expected in _ids(reference, drug(a), drug(b))
    assert expected in _ids(reference, drug(b), drug(a))


def test_rasagiline_is_a_warning_not_a_hard_stop_with_an_ssri(
    reference: DrugReference, drug: DrugLookup
) -> None:
    found = reference.interactions(drug(SERTRALINE), drug("rasagiline 1 MG Oral Tablet"))
    assert [(i.id, i.severity) for i in found] == [("onc-04b-serotonergic-maob", "warning")]


def test_same_ingredient_is_duplication_not_interaction(
    reference: DrugReference, drug: DrugLookup
) -> None:
    five = drug("methadone hydrochloride 5 MG Oral Tablet")
    ten = drug("methadone hydrochloride 10 MG Oral Tablet")
    assert reference.interactions(five, ten) == []
    assert reference.shared_ingredients(five, ten) == {"methadone"}


def test_topical_azole_does_not_inhibit_cyp3a4(reference: DrugReference, drug: DrugLookup) -> None:
    cream = drug("ketoconazole 20 MG/ML Topical Cream")
    assert "cyp3a4_strong_inhibitor" not in cream.classes
    assert reference.interactions(cream, drug(SIMVASTATIN)) == []
    assert reference.interactions(drug("ketoconazole 200 MG Oral Tablet"), drug(SIMVASTATIN))


def test_loperamide_is_not_an_opioid_analgesic(reference: DrugReference, drug: DrugLookup) -> None:
    loperamide = drug("loperamide hydrochloride 2 MG Oral Capsule")
    assert reference.interactions(loperamide, drug(PHENELZINE)) == []


def test_two_ssris_are_a_duplication(reference: DrugReference, drug: DrugLookup) -> None:
    assert reference.shared_classes_for_duplication(drug(SERTRALINE), drug(FLUOXETINE)) == {"ssri"}


def test_shared_interaction_tags_are_not_a_duplication(
    reference: DrugReference, drug: DrugLookup
) -> None:
    # Both strong CYP1A2 inhibitors, both QT-listed: tags only.
    fluvoxamine = drug("fluvoxamine maleate 50 MG Oral Tablet")
    ciprofloxacin = drug("ciprofloxacin 500 MG Oral Tablet")
    assert "cyp1a2_strong_inhibitor" in fluvoxamine.classes & ciprofloxacin.classes
    assert reference.shared_classes_for_duplication(fluvoxamine, ciprofloxacin) == frozenset()
    # An SSRI and a drug sharing only a CYP tag with it.
    assert reference.shared_classes_for_duplication(fluvoxamine, drug(SERTRALINE)) == {"ssri"}
    clarithro = drug(CLARITHROMYCIN)
    assert (
        reference.shared_classes_for_duplication(drug("citalopram 20 MG Oral Tablet"), clarithro)
        == frozenset()
    )


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        (SIMVASTATIN, "atorvastatin 40 MG Oral Tablet", {"statin"}),
        ("lisinopril 10 MG Oral Tablet", "enalapril maleate 10 MG Oral Tablet", {"ace_inhibitor"}),
        (
            "omeprazole 20 MG Delayed Release Oral Capsule",
            "pantoprazole sodium 40 MG Delayed Release Oral Tablet",
            {"ppi"},
        ),
        ("alprazolam 1 MG Oral Tablet", "lorazepam 1 MG Oral Tablet", {"benzodiazepine"}),
        ("ibuprofen 800 MG Oral Tablet", "naproxen 500 MG Oral Tablet", {"nsaid"}),
    ],
)
def test_therapeutic_duplications(
    reference: DrugReference, drug: DrugLookup, a: str, b: str, shared: set[str]
) -> None:
    assert reference.shared_classes_for_duplication(drug(a), drug(b)) == shared


def test_low_dose_aspirin_is_not_an_nsaid_duplication(
    reference: DrugReference, drug: DrugLookup
) -> None:
    aspirin = drug("aspirin 81 MG Delayed Release Oral Tablet")
    assert (
        reference.shared_classes_for_duplication(aspirin, drug("ibuprofen 800 MG Oral Tablet"))
        == frozenset()
    )


@pytest.mark.parametrize(
    ("text", "ingredients", "classes"),
    [
        ("penicillin", set(), {"penicillin"}),
        ("Penicillins", set(), {"penicillin"}),
        ("PCN (hives)", set(), {"penicillin"}),
        ("Sulfa", set(), {"sulfonamide_antibiotic"}),
        ("sulfa drugs - rash", set(), {"sulfonamide_antibiotic"}),
        ("codeine", {"codeine"}, set()),
        ("Codeine phosphate", {"codeine"}, set()),
        ("amoxicillin", {"amoxicillin"}, set()),
        ("NSAIDs", set(), {"nsaid"}),
        ("ACE inhibitors (angioedema)", set(), {"ace_inhibitor"}),
        ("penicillin; codeine", {"codeine"}, {"penicillin"}),
        ("latex", set(), set()),
        ("shellfish", set(), set()),
    ],
)
def test_resolve_allergen(
    reference: DrugReference, text: str, ingredients: set[str], classes: set[str]
) -> None:
    allergen = reference.resolve_allergen(text)
    assert allergen.ingredients == ingredients
    assert allergen.classes == classes
    assert allergen.known == bool(ingredients or classes)


def _kinds(reference: DrugReference, allergy: str, drug: Drug) -> list[tuple[str, str]]:
    return [
        (m.kind, m.term)
        for m in reference.allergy_matches(reference.resolve_allergen(allergy), drug)
    ]


def test_penicillin_allergy_matches_amoxicillin(reference: DrugReference, drug: DrugLookup) -> None:
    assert _kinds(reference, "penicillin", drug(AMOXICILLIN)) == [("class", "penicillin")]
    combo = drug("amoxicillin 875 MG / clavulanate 125 MG Oral Tablet")
    assert _kinds(reference, "penicillin", combo) == [("class", "penicillin")]


def test_sulfa_allergy_matches_sulfamethoxazole_only(
    reference: DrugReference, drug: DrugLookup
) -> None:
    bactrim = drug("sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet")
    assert _kinds(reference, "sulfa", bactrim) == [("class", "sulfonamide_antibiotic")]
    # Non-antibiotic sulfonamides: no established cross-reactivity, so no match.
    for name in (
        "furosemide 40 MG Oral Tablet",
        "hydrochlorothiazide 25 MG Oral Tablet",
        "celecoxib 200 MG Oral Capsule",
        "glipizide 5 MG Oral Tablet",
    ):
        assert _kinds(reference, "sulfa", drug(name)) == [], name


def test_ingredient_allergy_extends_to_its_allergy_group(
    reference: DrugReference, drug: DrugLookup
) -> None:
    assert _kinds(reference, "amoxicillin", drug(AMOXICILLIN)) == [("ingredient", "amoxicillin")]
    assert _kinds(reference, "amoxicillin", drug("penicillin V potassium 500 MG Oral Tablet")) == [
        ("class", "penicillin")
    ]
    assert _kinds(
        reference, "codeine", drug("acetaminophen 300 MG / codeine phosphate 30 MG Oral Tablet")
    ) == [("ingredient", "codeine")]
    # Opioids are not an allergy group: a codeine allergy does not flag morphine.
    assert _kinds(reference, "codeine", drug("morphine sulfate 15 MG Oral Tablet")) == []


def test_penicillin_allergy_warns_on_cephalosporins(
    reference: DrugReference, drug: DrugLookup
) -> None:
    matches = reference.allergy_matches(
        reference.resolve_allergen("penicillin"), drug("cephalexin 500 MG Oral Capsule")
    )
    assert [(m.kind, m.term, m.severity) for m in matches] == [
        ("cross_reactivity", "cephalosporin", "warning")
    ]


def test_no_allergy_match_for_unrelated_drugs(reference: DrugReference, drug: DrugLookup) -> None:
    assert _kinds(reference, "penicillin", drug(SERTRALINE)) == []
    assert reference.allergy_matches(reference.resolve_allergen("latex"), drug(AMOXICILLIN)) == []


def test_identify_prefers_ndc_then_rxnorm_then_description(
    reference: DrugReference, drug: DrugLookup
) -> None:
    coded = dataclasses.replace(drug(SERTRALINE), ndcs=("99999010130",), rxcui="999999901")
    other = dataclasses.replace(drug(FLUOXETINE), rxcui="999999902")
    ref = DrugReference(reference.vocabulary, [coded, other, drug(AMOXICILLIN)])
    assert ref.identify(
        "99999-101-30", "999999902", "amoxicillin 500 mg capsule"
    ) == Identification(coded, "ndc", True)
    assert ref.identify("99999-999-99", "999999902", "") == Identification(other, "rxnorm", True)
    assert ref.identify(None, None, "amoxicillin 500 mg capsule") == Identification(
        drug(AMOXICILLIN), "description", None
    )
    assert ref.identify("12345", None, "amoxicillin 500 mg capsule") == Identification(
        drug(AMOXICILLIN), "description", False
    )
    assert ref.identify("12345", "1", "unknown thing") == Identification(None, None, False)


def test_max_daily(reference: DrugReference, drug: DrugLookup) -> None:
    sertraline = drug(SERTRALINE)
    assert [(d.ingredient, d.amount, d.unit) for d in reference.max_daily(sertraline)] == [
        ("sertraline", 200, "MG")
    ]
    assert sertraline.max_daily_for("sertraline") is not None
    assert sertraline.max_daily_for("fluoxetine") is None
    assert reference.max_daily(drug("warfarin sodium 5 MG Oral Tablet")) == ()
