"""The bundled clinical drug list (``data/drugs.tsv``) turned into ``Drug`` objects.

A row gives the RxNorm-shaped name, the route, the DEA schedule label and an optional maximum
daily dose override; ingredients, strengths and dose form are read from the name, classes and
default maxima come from the ingredient table. See the header of ``drugs.tsv`` for the columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Final

from eprescribe.drugs.errors import DrugDataError
from eprescribe.drugs.model import SCHEDULE_CODES, Drug, Ingredient, MaxDose
from eprescribe.drugs.names import parse_drug_name
from eprescribe.drugs.vocabulary import Vocabulary, parse_amount

__all__ = ["build_drug", "read_drug_rows"]

_COLUMNS: Final = ("name", "route", "dea_schedule", "max_daily", "rxcui", "ndcs")
_NO_MAXIMUM: Final = "-"


def read_drug_rows(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Rows of ``drugs.tsv`` as column -> value; comment lines (#) and the header skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#") or line.startswith("name\t"):
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) > len(_COLUMNS):
            raise DrugDataError(f"drugs.tsv line {number}: {len(fields)} columns")
        yield dict(zip(_COLUMNS, fields + [""] * (len(_COLUMNS) - len(fields)), strict=True))


def build_drug(row: Mapping[str, str], vocabulary: Vocabulary) -> Drug:
    """A ``Drug`` from one row, resolved against the vocabulary."""
    name, route = row["name"], row["route"].strip()
    parsed = parse_drug_name(name)
    ingredients = tuple(
        _ingredient(part.name, part.strength, part.unit, vocabulary, name) for part in parsed.parts
    )
    names = [ingredient.name for ingredient in ingredients]
    classes = set().union(*(vocabulary.ingredients[n].classes for n in names))
    return Drug(
        name=name,
        ingredients=ingredients,
        dose_form=parsed.dose_form,
        route=route,
        classes=vocabulary.route_classes(classes, route),
        dea_schedule=_schedule(row["dea_schedule"], name),
        max_daily=_max_daily(names, route, row["max_daily"], vocabulary, name),
        rxcui=row["rxcui"].strip() or None,
        ndcs=tuple(row["ndcs"].split()),
    )


def _ingredient(
    precise: str, strength: Decimal, unit: str, vocabulary: Vocabulary, where: str
) -> Ingredient:
    name = vocabulary.ingredient_for(precise)
    if name is None:
        raise DrugDataError(f"{where}: unknown ingredient {precise!r}")
    basis = precise.lower()
    return Ingredient(name, strength, unit, None if basis == name else basis)


def _schedule(label: str, where: str) -> str | None:
    label = label.strip()
    if not label:
        return None
    if label not in SCHEDULE_CODES:
        raise DrugDataError(f"{where}: unknown DEA schedule {label!r}")
    return SCHEDULE_CODES[label]


def _max_daily(
    names: list[str], route: str, override: str, vocabulary: Vocabulary, where: str
) -> tuple[MaxDose, ...]:
    """Per ingredient (once each, in name order): the override, else the route default."""
    override = override.strip()
    if override == _NO_MAXIMUM:
        return ()
    explicit = _overrides(override, where)
    if set(explicit) - set(names):
        raise DrugDataError(f"{where}: max daily override names an ingredient it lacks")
    doses = []
    for name in dict.fromkeys(names):
        amount = explicit.get(name, vocabulary.ingredients[name].max_daily.get(route))
        if amount is not None:
            doses.append(MaxDose(name, *amount))
    return tuple(doses)


def _overrides(text: str, where: str) -> dict[str, tuple[Decimal, str] | None]:
    """``"metformin=2000 MG; trimethoprim=-"`` -> {metformin: (2000, MG), trimethoprim: None}."""
    result: dict[str, tuple[Decimal, str] | None] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, amount = item.partition("=")
        result[name.strip()] = (
            None if amount.strip() == _NO_MAXIMUM else parse_amount(amount, where)
        )
    return result
