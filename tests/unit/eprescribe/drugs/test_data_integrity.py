"""The bundled reference data: size, shape, consistency and the absence of unverified codes."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable

import pytest

from eprescribe.drugs import SCHEDULE_CODES, Drug, DrugReference
from eprescribe.drugs.catalog import read_drug_rows
from eprescribe.drugs.forms import DOSE_FORMS, LOCAL_ROUTES
from eprescribe.drugs.names import parse_drug_name
from eprescribe.drugs.reference import _bundled
from eprescribe.drugs.vocabulary import read_data_text
from eprescribe.ncpdp.medication import CONTROLLED_SCHEDULES

DrugLookup = Callable[[str], Drug]

# "[24 HR ]ingredient 50 MG[ / ingredient 325 MG] Dose Form"
_PART = r"[a-z][a-zA-Z ,.-]*? \d*\.?\d+ (?:MG|MEQ|UNT|MG/ML|UNT/ML|MG/HR|MG/ACTUAT)"
_RXNORM_SHAPE = re.compile(rf"(?:\d+ HR )?{_PART}(?: / {_PART})* [A-Z][A-Za-z -]+")
_ONC_PAIRS = range(1, 16)


def test_at_least_300_clinical_drugs(reference: DrugReference) -> None:
    assert len(reference.drugs) >= 300


def test_names_follow_the_rxnorm_shape(reference: DrugReference) -> None:
    for drug in reference.drugs:
        assert _RXNORM_SHAPE.fullmatch(drug.name), drug.name
        assert drug.dose_form in DOSE_FORMS, drug.name
        assert all(i.name == i.name.lower() for i in drug.ingredients), drug.name


def test_name_and_structure_agree(reference: DrugReference) -> None:
    for drug in reference.drugs:
        parsed = parse_drug_name(drug.name)
        assert parsed.dose_form == drug.dose_form
        assert [(p.strength, p.unit) for p in parsed.parts] == [
            (i.strength, i.unit) for i in drug.ingredients
        ]


def test_no_two_drugs_share_a_name(reference: DrugReference) -> None:
    counts = Counter(drug.name.lower() for drug in reference.drugs)
    assert [name for name, count in counts.items() if count > 1] == []


def test_multi_ingredient_names_are_alphabetical_like_rxnorm(reference: DrugReference) -> None:
    for drug in reference.drugs:
        parts = [part.name for part in parse_drug_name(drug.name).parts]
        assert parts == sorted(parts, key=str.lower), drug.name


def test_every_referenced_class_exists(reference: DrugReference) -> None:
    for drug in reference.drugs:
        assert drug.classes <= set(reference.classes), drug.name
    for info in reference.vocabulary.ingredients.values():
        assert info.classes <= set(reference.classes), info.name


def test_every_drug_ingredient_is_in_the_ingredient_table(reference: DrugReference) -> None:
    for drug in reference.drugs:
        assert drug.ingredient_names <= set(reference.vocabulary.ingredients), drug.name


def test_max_doses_are_positive_and_in_the_strength_unit(reference: DrugReference) -> None:
    for drug in reference.drugs:
        units = {i.name: (i.unit or "").split("/")[0] for i in drug.ingredients}
        for dose in drug.max_daily:
            assert dose.amount > 0, drug.name
            assert dose.ingredient in units, drug.name
            assert dose.unit == units[dose.ingredient], drug.name


def test_ingredient_maxima_are_positive(reference: DrugReference) -> None:
    for info in reference.vocabulary.ingredients.values():
        assert all(amount > 0 for amount, _ in info.max_daily.values()), info.name


def test_max_dose_overrides_apply(drug: DrugLookup) -> None:
    assert drug("metformin hydrochloride 500 MG Oral Tablet").max_daily_for("metformin")
    er = drug("24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet")
    assert er.max_daily_for("metformin").amount == 2000  # type: ignore[union-attr]
    combo = drug("acetaminophen 325 MG / hydrocodone bitartrate 10 MG Oral Tablet")
    assert [(d.ingredient, d.amount) for d in combo.max_daily] == [
        ("acetaminophen", 4000),
        ("hydrocodone", 60),  # generic labels: up to 6 x 10/325, 8 x 7.5/325, 12 x 5/325
    ]
    smx = drug("sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet")
    assert smx.max_daily == ()
    assert drug("insulin glargine 100 UNT/ML Injectable Solution").max_daily == ()


def test_no_ndc_or_rxcui_in_the_bundled_data(reference: DrugReference) -> None:
    assert all(
        drug.rxcui is None and drug.other_rxcuis == () and drug.ndcs == ()
        for drug in reference.drugs
    )
    rows = list(read_drug_rows(read_data_text("drugs.tsv").splitlines()))
    assert rows
    assert all(row["rxcui"] == "" and row["ndcs"] == "" for row in rows)
    assert not re.search(r"\b\d{5}-\d{3,4}-\d{1,2}\b|\b\d{11}\b", read_data_text("drugs.tsv"))


def test_controlled_ingredients_always_carry_a_schedule(reference: DrugReference) -> None:
    ingredients = reference.vocabulary.ingredients
    for drug in reference.drugs:
        controlled = any(ingredients[name].controlled for name in drug.ingredient_names)
        assert controlled == drug.is_controlled, drug.name


def test_every_prescribable_schedule_has_bundled_drugs(reference: DrugReference) -> None:
    # Schedule I substances have no accepted medical use, so nothing in C-I is prescribable.
    schedules = Counter(drug.schedule_label for drug in reference.drugs if drug.is_controlled)
    assert set(schedules) == {"C-II", "C-III", "C-IV", "C-V"}
    assert all(count >= 3 for count in schedules.values())


def test_schedule_codes_are_the_script_nci_codes() -> None:
    assert set(SCHEDULE_CODES.values()) == set(CONTROLLED_SCHEDULES)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("oxycodone hydrochloride 5 MG Oral Tablet", "C-II"),
        ("72 HR fentanyl 0.025 MG/HR Transdermal System", "C-II"),
        ("lisdexamfetamine dimesylate 30 MG Oral Capsule", "C-II"),
        ("buprenorphine 8 MG / naloxone 2 MG Sublingual Film", "C-III"),
        ("acetaminophen 300 MG / codeine phosphate 30 MG Oral Tablet", "C-III"),
        ("testosterone cypionate 200 MG/ML Injectable Solution", "C-III"),
        ("alprazolam 0.5 MG Oral Tablet", "C-IV"),
        ("tramadol hydrochloride 50 MG Oral Tablet", "C-IV"),
        ("carisoprodol 350 MG Oral Tablet", "C-IV"),
        ("pregabalin 75 MG Oral Capsule", "C-V"),
        ("lacosamide 100 MG Oral Tablet", "C-V"),
        ("codeine phosphate 2 MG/ML / guaifenesin 20 MG/ML Oral Solution", "C-V"),
    ],
)
def test_schedules_of_common_controlled_drugs(drug: DrugLookup, name: str, label: str) -> None:
    assert drug(name).schedule_label == label
    assert drug(name).is_controlled


def test_every_onc_pair_is_present_and_resolvable(reference: DrugReference) -> None:
    by_pair: dict[int, list[str]] = {}
    for interaction in reference.vocabulary.interactions:
        match = re.match(r"onc-(\d\d)", interaction.id)
        if match:
            by_pair.setdefault(int(match.group(1)), []).append(interaction.id)
    assert sorted(by_pair) == list(_ONC_PAIRS)
    for interaction in reference.vocabulary.interactions:
        left = [d for d in reference.drugs if interaction.left.matches(d)]
        right = [d for d in reference.drugs if interaction.right.matches(d)]
        assert left, f"{interaction.id}: no bundled drug on the left"
        assert right, f"{interaction.id}: no bundled drug on the right"
        assert any(reference.interactions(a, b) for a in left[:5] for b in right[:5]), (
            interaction.id
        )


def test_interaction_ids_are_unique_and_severities_known(reference: DrugReference) -> None:
    ids = [interaction.id for interaction in reference.vocabulary.interactions]
    assert len(ids) == len(set(ids))
    assert {i.severity for i in reference.vocabulary.interactions} == {"hard_stop", "warning"}
    assert all(i.message and i.source for i in reference.vocabulary.interactions)


@pytest.mark.parametrize(
    ("class_id", "members"),
    [
        ("maoi", {"phenelzine", "tranylcypromine", "isocarboxazid", "selegiline", "rasagiline"}),
        ("maoi", {"linezolid", "procarbazine"}),
        (
            "amphetamine",
            {"amphetamine", "dextroamphetamine", "lisdexamfetamine", "methylphenidate"},
        ),
        ("amphetamine", {"dexmethylphenidate", "phentermine", "atomoxetine", "pseudoephedrine"}),
        ("cyp3a4_strong_inhibitor", {"ketoconazole", "itraconazole", "clarithromycin"}),
        ("cyp3a4_strong_inhibitor", {"ritonavir", "nefazodone", "voriconazole"}),
        ("cyp3a4_strong_inducer", {"rifampin", "carbamazepine", "phenytoin"}),
        ("cyp1a2_strong_inhibitor", {"fluvoxamine", "ciprofloxacin"}),
        ("qt_high_risk", {"dofetilide", "sotalol", "methadone", "haloperidol", "amiodarone"}),
        ("protease_inhibitor", {"ritonavir", "atazanavir", "darunavir", "lopinavir"}),
        ("ergot_alkaloid", {"ergotamine", "dihydroergotamine", "methylergonovine"}),
        ("triptan", {"sumatriptan", "rizatriptan", "zolmitriptan", "eletriptan"}),
        ("tca", {"amitriptyline", "nortriptyline", "doxepin", "imipramine"}),
        ("ppi", {"omeprazole", "esomeprazole", "pantoprazole", "lansoprazole", "rabeprazole"}),
    ],
)
def test_onc_class_membership(reference: DrugReference, class_id: str, members: set[str]) -> None:
    ingredients = reference.vocabulary.ingredients
    assert {m for m in members if class_id in ingredients[m].classes} == members


def test_high_risk_qt_agents_are_also_qt_prolonging(reference: DrugReference) -> None:
    for info in reference.vocabulary.ingredients.values():
        if "qt_high_risk" in info.classes:
            assert "qt_prolonging" in info.classes, info.name


def test_strong_cyp3a4_inhibitors_are_cyp3a4_inhibitors(reference: DrugReference) -> None:
    for info in reference.vocabulary.ingredients.values():
        if "cyp3a4_strong_inhibitor" in info.classes:
            assert "cyp3a4_inhibitor" in info.classes, info.name
        if "cyp1a2_strong_inhibitor" in info.classes:
            assert "cyp1a2_inhibitor" in info.classes, info.name


def test_tag_classes_never_count_for_duplication(reference: DrugReference) -> None:
    tags = [c for c in reference.classes if c.startswith(("cyp", "qt_"))]
    tags += ["serotonergic", "antiplatelet", "maoi", "amphetamine"]
    assert all(not reference.classes[c].duplication for c in tags)
    therapeutic = ["ssri", "statin", "ace_inhibitor", "ppi", "benzodiazepine", "nsaid", "arb"]
    assert all(reference.classes[c].duplication for c in therapeutic)


def test_epc_strings_are_fda_shaped(reference: DrugReference) -> None:
    for drug_class in reference.classes.values():
        for epc in drug_class.epc:
            assert re.fullmatch(r"\S.*\S \[(EPC|MoA|CS|PE)\]", epc), epc


def test_local_products_do_not_carry_systemic_tags(reference: DrugReference) -> None:
    systemic = {c for c, dc in reference.classes.items() if dc.systemic_only}
    for drug in reference.drugs:
        if drug.route in LOCAL_ROUTES:
            assert not drug.classes & systemic, drug.name


def test_bundled_load_is_fast() -> None:
    started = time.perf_counter()
    fresh = _bundled.__wrapped__()
    elapsed = time.perf_counter() - started
    assert len(fresh.drugs) >= 300
    # Well under 100 ms on a developer machine; the bound leaves room for a loaded CI box.
    assert elapsed < 0.5


def test_bundled_is_cached() -> None:
    assert DrugReference.bundled() is DrugReference.bundled()
