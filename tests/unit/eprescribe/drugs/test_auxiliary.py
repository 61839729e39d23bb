"""Auxiliary warnings in the drug reference: how one matches a drug, and the bundled file's
consistency (a typo fails on load, never silently drops a warning from a label)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from eprescribe.drugs import AuxiliaryWarning, Drug, DrugDataError, DrugReference, Ingredient
from eprescribe.drugs.vocabulary import Vocabulary

DrugLookup = Callable[[str], Drug]


def oral(name: str, classes: set[str], dose_form: str = "Oral Tablet") -> Drug:
    return Drug(
        name=f"{name} 10 MG {dose_form}",
        ingredients=(Ingredient(name, Decimal(10), "MG"),),
        dose_form=dose_form,
        route="oral",
        classes=frozenset(classes),
        dea_schedule=None,
    )


def test_a_warning_must_say_which_drugs_it_is_for() -> None:
    with pytest.raises(ValueError, match="which drugs"):
        AuxiliaryWarning(id="x", text="Take with food.")


def test_a_warning_needs_its_text() -> None:
    with pytest.raises(ValueError, match="text"):
        AuxiliaryWarning(id="x", text=" ", routes=frozenset({"oral"}))


def test_every_condition_given_must_hold() -> None:
    warning = AuxiliaryWarning(
        id="food", text="Take with food.", classes=frozenset({"nsaid"}), routes=frozenset({"oral"})
    )
    topical = Drug(
        name="diclofenac 10 MG/ML Topical Gel",
        ingredients=(Ingredient("diclofenac", Decimal(10), "MG/ML"),),
        dose_form="Topical Gel",
        route="topical",
        classes=frozenset({"nsaid"}),
        dea_schedule=None,
    )
    assert warning.matches(oral("ibuprofen", {"nsaid"}))
    assert not warning.matches(topical)
    assert not warning.matches(oral("acetaminophen", {"analgesic_nonopioid"}))


def test_an_exception_rules_a_drug_out() -> None:
    warning = AuxiliaryWarning(
        id="food",
        text="Take with food.",
        classes=frozenset({"nsaid"}),
        except_ingredients=frozenset({"celecoxib"}),
    )
    assert not warning.matches(oral("celecoxib", {"nsaid"}))


def test_a_dose_form_warning_needs_no_ingredient() -> None:
    warning = AuxiliaryWarning(
        id="whole", text="Swallow whole.", dose_forms=frozenset({"Extended Release Oral Tablet"})
    )
    assert warning.matches(oral("anything", set(), "Extended Release Oral Tablet"))
    assert not warning.matches(oral("anything", set()))


@pytest.mark.parametrize(
    ("field", "value", "unknown"),
    [
        ("classes", frozenset({"no_such_class"}), "no_such_class"),
        ("ingredients", frozenset({"no such ingredient"}), "no such ingredient"),
        ("dose_forms", frozenset({"Oral Tabelt"}), "Oral Tabelt"),
    ],
)
def test_a_warning_naming_something_unknown_fails_on_load(
    field: str, value: frozenset[str], unknown: str
) -> None:
    warning = AuxiliaryWarning(id="typo", text="Take with food.", **{field: value})
    with pytest.raises(DrugDataError, match=unknown):
        Vocabulary((), (), (), (), (warning,))


def test_the_bundled_warnings_have_unique_ids_and_sources(reference: DrugReference) -> None:
    warnings = reference.vocabulary.auxiliary_warnings
    assert len(warnings) >= 10
    assert len({w.id for w in warnings}) == len(warnings)
    assert [w.id for w in warnings if not w.source] == []


def test_each_bundled_ingredient_or_class_warning_reaches_a_bundled_drug(
    reference: DrugReference,
) -> None:
    # Catches a condition no drug can meet (an ingredient given by a route it never takes).
    unreachable = [
        warning.id
        for warning in reference.vocabulary.auxiliary_warnings
        if (warning.ingredients or warning.classes)
        and not any(warning.matches(d) for d in reference.drugs)
    ]
    assert unreachable == []


def test_warnings_print_most_important_first(reference: DrugReference, drug: DrugLookup) -> None:
    oxycodone = drug("12 HR oxycodone hydrochloride 10 MG Extended Release Oral Tablet")
    assert reference.auxiliary_warnings(oxycodone) == (
        "May cause drowsiness. Alcohol may intensify this effect. Use care when operating a car "
        "or dangerous machinery.",
        "Swallow whole. Do not crush or chew.",
    )
