"""The measured drug classes, read from the bundled drug reference's real drugs."""

from __future__ import annotations

import pytest

from eprescribe.adherence.classes import (
    BY_CLASS,
    BY_INGREDIENT,
    DIABETES,
    RAS_ANTAGONISTS,
    STATINS,
    measured_classes,
)
from eprescribe.drugs import Drug, DrugReference, Ingredient

REFERENCE = DrugReference.bundled()


def classes_of(name: str) -> dict[str, str]:
    drug = REFERENCE.by_name(name)
    assert drug is not None, name
    return measured_classes(drug, REFERENCE.vocabulary)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lisinopril 10 MG Oral Tablet", {RAS_ANTAGONISTS: "lisinopril"}),
        ("losartan potassium 50 MG Oral Tablet", {RAS_ANTAGONISTS: "losartan"}),
        ("atorvastatin 20 MG Oral Tablet", {STATINS: "atorvastatin"}),
        ("metformin hydrochloride 500 MG Oral Tablet", {DIABETES: "metformin"}),
        ("glipizide 5 MG Oral Tablet", {DIABETES: "glipizide"}),
        # a combination: only its ingredient of the class is the class's drug
        (
            "hydrochlorothiazide 12.5 MG / lisinopril 20 MG Oral Tablet",
            {RAS_ANTAGONISTS: "lisinopril"},
        ),
        (
            "metformin hydrochloride 1000 MG / sitagliptin 50 MG Oral Tablet",
            {DIABETES: "metformin / sitagliptin"},
        ),
        # not measured
        ("insulin glargine 100 UNT/ML Pen Injector", {}),
        ("amlodipine 5 MG Oral Tablet", {}),
    ],
)
def test_a_drug_of_the_reference_belongs_to_the_measured_classes_of_its_ingredients(
    name: str, expected: dict[str, str]
) -> None:
    assert classes_of(name) == expected


def test_ingredients_without_a_class_in_the_vocabulary_are_listed_by_name() -> None:
    aliskiren = Drug(
        name="aliskiren 150 MG Oral Tablet",
        ingredients=(Ingredient("aliskiren", None, None),),
        dose_form="Oral Tablet",
        route="oral",
        classes=frozenset(),
        dea_schedule=None,
    )
    assert measured_classes(aliskiren, REFERENCE.vocabulary) == {RAS_ANTAGONISTS: "aliskiren"}
    assert set(BY_INGREDIENT.values()) <= {RAS_ANTAGONISTS, DIABETES}


def test_every_mapped_class_is_in_the_vocabulary_and_insulin_is_not_mapped() -> None:
    assert set(BY_CLASS) <= set(REFERENCE.vocabulary.classes)
    assert "insulin" not in BY_CLASS
    assert not set(BY_INGREDIENT) & set(REFERENCE.vocabulary.ingredients)
