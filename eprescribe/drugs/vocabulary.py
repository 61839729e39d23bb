"""The vocabulary behind the drug list: classes, ingredients, interactions, cross-reactivities
and the label's auxiliary warnings.

Read from the bundled JSON files (``data/classes.json``, ``data/ingredients.json``,
``data/interactions.json``, ``data/auxiliary.json``) and checked for internal consistency on
load, so a typo in a class id fails loudly instead of silently never matching.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any, Final

from eprescribe.drugs.errors import DrugDataError
from eprescribe.drugs.forms import DOSE_FORMS, LOCAL_ROUTES
from eprescribe.drugs.model import (
    AuxiliaryWarning,
    CrossReactivity,
    DrugClass,
    Interaction,
    InteractionSide,
)
from eprescribe.drugs.names import strip_salts
from eprescribe.drugs.strength import parse_decimal

__all__ = ["IngredientInfo", "Vocabulary", "parse_amount", "read_data_text"]

_PACKAGE: Final = "eprescribe.drugs"


def read_data_text(name: str) -> str:
    """A bundled data file as text."""
    return resources.files(_PACKAGE).joinpath("data", name).read_text(encoding="utf-8")


@dataclasses.dataclass(frozen=True, slots=True)
class IngredientInfo:
    """What the reference knows about one ingredient (RxNorm IN)."""

    name: str
    classes: frozenset[str]
    max_daily: Mapping[str, tuple[Decimal, str]]
    controlled: bool = False
    synonyms: tuple[str, ...] = ()
    precise: tuple[str, ...] = ()


class Vocabulary:
    """Classes, ingredients, interactions, cross-reactivities and auxiliary warnings, with
    lookups by name."""

    def __init__(
        self,
        classes: Iterable[DrugClass],
        ingredients: Iterable[IngredientInfo],
        interactions: Iterable[Interaction],
        cross_reactivities: Iterable[CrossReactivity],
        auxiliary_warnings: Iterable[AuxiliaryWarning] = (),
    ) -> None:
        self.classes: Mapping[str, DrugClass] = {c.id: c for c in classes}
        self.ingredients: Mapping[str, IngredientInfo] = {i.name: i for i in ingredients}
        self.interactions = tuple(interactions)
        self.cross_reactivities = tuple(cross_reactivities)
        #: in printing order, the most important first
        self.auxiliary_warnings = tuple(auxiliary_warnings)
        self._precise = {p: i.name for i in self.ingredients.values() for p in i.precise}
        self._epc = _epc_index(self.classes.values())
        _check(self)

    @classmethod
    def bundled(cls) -> Vocabulary:
        classes = json.loads(read_data_text("classes.json"))
        ingredients = json.loads(read_data_text("ingredients.json"))["ingredients"]
        interactions = json.loads(read_data_text("interactions.json"))["interactions"]
        warnings = json.loads(read_data_text("auxiliary.json"))["warnings"]
        return cls(
            (_drug_class(raw) for raw in classes["classes"]),
            (_ingredient(name, raw) for name, raw in ingredients.items()),
            (_interaction(raw) for raw in interactions),
            (_cross_reactivity(raw) for raw in classes["cross_reactivities"]),
            (_auxiliary_warning(raw) for raw in warnings),
        )

    def ingredient_for(self, precise_name: str) -> str | None:
        """The RxNorm IN for a name as written in a drug name or FDA ``SUBSTANCENAME``:
        the name itself, a listed precise form, or the name without its salt words."""
        name = " ".join(precise_name.lower().replace(",", " ").split())
        if name in self.ingredients:
            return name
        listed = self._precise.get(precise_name.lower()) or self._precise.get(name)
        if listed is not None:
            return listed
        stripped = strip_salts(name)
        return stripped if stripped in self.ingredients else None

    def classes_for_epc(self, pharm_class: str, ingredients: frozenset[str]) -> frozenset[str]:
        """Class ids an FDA ``PHARM_CLASSES`` entry maps to for a product with these
        ingredients (a class's ``epc_except`` ingredients do not get it)."""
        return frozenset(
            class_id
            for class_id in self._epc.get(pharm_class.strip().lower(), ())
            if not ingredients & self.classes[class_id].epc_except
        )

    def route_classes(self, classes: Iterable[str], route: str) -> frozenset[str]:
        """``classes`` less the systemic-only ones when ``route`` acts locally."""
        local = route in LOCAL_ROUTES
        return frozenset(c for c in classes if not (local and self.classes[c].systemic_only))


def _epc_index(classes: Iterable[DrugClass]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for drug_class in classes:
        for epc in drug_class.epc:
            index.setdefault(epc.lower(), []).append(drug_class.id)
    return {epc: tuple(ids) for epc, ids in index.items()}


def _drug_class(raw: Mapping[str, Any]) -> DrugClass:
    return DrugClass(
        id=raw["id"],
        name=raw["name"],
        duplication=bool(raw.get("duplication", False)),
        systemic_only=bool(raw.get("systemic_only", False)),
        allergy_group=bool(raw.get("allergy_group", False)),
        epc=tuple(raw.get("epc", ())),
        epc_except=frozenset(raw.get("epc_except", ())),
        synonyms=tuple(raw.get("synonyms", ())),
    )


def _ingredient(name: str, raw: Mapping[str, Any]) -> IngredientInfo:
    return IngredientInfo(
        name=name,
        classes=frozenset(raw.get("classes", ())),
        max_daily={
            route: parse_amount(text, name) for route, text in raw.get("max_daily", {}).items()
        },
        controlled=bool(raw.get("controlled", False)),
        synonyms=tuple(raw.get("synonyms", ())),
        precise=tuple(raw.get("precise", ())),
    )


def parse_amount(text: str, where: str) -> tuple[Decimal, str]:
    """``"200 MG"`` -> (Decimal("200"), "MG"); DrugDataError naming ``where`` otherwise."""
    value_text, _, unit = text.strip().partition(" ")
    value = parse_decimal(value_text)
    if value is None or not unit:
        raise DrugDataError(f"{where}: {text!r} is not '<amount> <UNIT>'")
    return value, unit


def _side(raw: Mapping[str, Any]) -> InteractionSide:
    return InteractionSide(
        ingredients=frozenset(raw.get("ingredients", ())),
        classes=frozenset(raw.get("classes", ())),
        except_ingredients=frozenset(raw.get("except_ingredients", ())),
        except_classes=frozenset(raw.get("except_classes", ())),
    )


def _interaction(raw: Mapping[str, Any]) -> Interaction:
    return Interaction(
        id=raw["id"],
        left=_side(raw["left"]),
        right=_side(raw["right"]),
        severity=raw["severity"],
        message=raw["message"],
        source=raw["source"],
    )


def _cross_reactivity(raw: Mapping[str, Any]) -> CrossReactivity:
    return CrossReactivity(
        allergy_class=raw["allergy"],
        drug_class=raw["drug_class"],
        severity=raw["severity"],
        message=raw["message"],
        source=raw["source"],
    )


def _auxiliary_warning(raw: Mapping[str, Any]) -> AuxiliaryWarning:
    return AuxiliaryWarning(
        id=raw["id"],
        text=raw["text"],
        ingredients=frozenset(raw.get("ingredients", ())),
        classes=frozenset(raw.get("classes", ())),
        routes=frozenset(raw.get("routes", ())),
        dose_forms=frozenset(raw.get("dose_forms", ())),
        except_ingredients=frozenset(raw.get("except_ingredients", ())),
        except_classes=frozenset(raw.get("except_classes", ())),
        source=raw.get("source", ""),
    )


def _check(vocabulary: Vocabulary) -> None:
    """Every class, ingredient and dose form referenced anywhere exists."""
    classes, ingredients = vocabulary.classes, vocabulary.ingredients
    for info in ingredients.values():
        _known(info.classes, classes, f"ingredient {info.name}")
    for drug_class in classes.values():
        _known(drug_class.epc_except, ingredients, f"class {drug_class.id} epc_except")
    for interaction in vocabulary.interactions:
        for side in (interaction.left, interaction.right):
            _known(side.classes | side.except_classes, classes, f"interaction {interaction.id}")
            _known(
                side.ingredients | side.except_ingredients,
                ingredients,
                f"interaction {interaction.id}",
            )
    for cross in vocabulary.cross_reactivities:
        _known({cross.allergy_class, cross.drug_class}, classes, "cross-reactivity")
    for warning in vocabulary.auxiliary_warnings:
        where = f"auxiliary warning {warning.id}"
        _known(warning.classes | warning.except_classes, classes, where)
        _known(warning.ingredients | warning.except_ingredients, ingredients, where)
        _known(warning.dose_forms, DOSE_FORMS, where)


def _known(names: Iterable[str], known: Mapping[str, object], where: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise DrugDataError(f"{where}: unknown {', '.join(unknown)}")
