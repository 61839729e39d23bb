"""Value objects validate themselves."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eprescribe.drugs import Drug, Ingredient, InteractionSide, MaxDose
from eprescribe.drugs.strength import Strength, canonical_strength, same_strength


def _drug(**changes: object) -> Drug:
    fields: dict[str, object] = {
        "name": "sertraline 50 MG Oral Tablet",
        "ingredients": (Ingredient("sertraline", Decimal(50), "MG"),),
        "dose_form": "Oral Tablet",
        "route": "oral",
        "classes": frozenset({"ssri"}),
        "dea_schedule": None,
    }
    fields.update(changes)
    return Drug(**fields)  # type: ignore[arg-type]


def test_drug_helpers() -> None:
    plain = _drug()
    assert plain.ingredient_names == {"sertraline"}
    assert not plain.is_controlled
    assert plain.schedule_label is None
    controlled = _drug(dea_schedule="C48675")
    assert controlled.is_controlled
    assert controlled.schedule_label == "C-II"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"ingredients": ()}, "at least one ingredient"),
        ({"dea_schedule": "CII"}, "unknown DEA schedule"),
        ({"dea_schedule": "C38046"}, "unknown DEA schedule"),  # "unspecified" is no schedule
    ],
)
def test_invalid_drugs(changes: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        _drug(**changes)


@pytest.mark.parametrize(
    ("name", "strength", "unit", "error"),
    [
        ("Sertraline", Decimal(50), "MG", "lowercase"),
        ("", None, None, "lowercase"),
        ("x", Decimal(0), "MG", "positive"),
        ("x", Decimal(1), None, "go together"),
    ],
)
def test_invalid_ingredients(
    name: str, strength: Decimal | None, unit: str | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        Ingredient(name, strength, unit)


def test_max_dose_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        MaxDose("x", Decimal(0), "MG")


def test_interaction_side_needs_a_target_and_honours_exceptions() -> None:
    with pytest.raises(ValueError, match="ingredients or classes"):
        InteractionSide()
    side = InteractionSide(
        classes=frozenset({"ssri"}), except_ingredients=frozenset({"sertraline"})
    )
    assert not side.matches(_drug())
    assert InteractionSide(classes=frozenset({"ssri"})).matches(_drug())
    assert not InteractionSide(
        classes=frozenset({"ssri"}), except_classes=frozenset({"ssri"})
    ).matches(_drug())


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("50", "mcg", Strength(Decimal("0.05"), "MG")),
        ("0.05", "MG", Strength(Decimal("0.05"), "MG")),
        ("1", "g", Strength(Decimal(1000), "MG")),
        ("400", "mg/5mL", Strength(Decimal(80), "MG/ML")),
        ("6", "mg/24h", Strength(Decimal("0.25"), "MG/HR")),
        ("25", "ug/h", Strength(Decimal("0.025"), "MG/HR")),
        ("90", "ug/{actuat}", Strength(Decimal("0.09"), "MG/ACTUAT")),
        ("100", "[iU]/mL", Strength(Decimal(100), "UNT/ML")),
        ("20", "mEq/1", Strength(Decimal(20), "MEQ")),
        ("2", "g/100g", Strength(Decimal(20), "MG/G")),
    ],
)
def test_canonical_strength(value: str, unit: str, expected: Strength) -> None:
    assert canonical_strength(Decimal(value), unit) == expected


def test_unknown_units_and_percentages() -> None:
    assert canonical_strength(Decimal(1), "[hp_X]/mL") is None
    assert canonical_strength(Decimal(1), "mg/furlong") is None
    assert same_strength(Strength(Decimal(2), "%"), Strength(Decimal(20), "MG/ML"))
    assert same_strength(Strength(Decimal(2), "%"), Strength(Decimal(20), "MG/G"))
    assert not same_strength(Strength(Decimal(2), "%"), Strength(Decimal(20), "MG"))
