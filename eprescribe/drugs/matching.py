"""Free-text lookups: a prescription's drug description, an allergy entry.

Both work on words, not characters: a text is cut into lowercase alphabetic words and scanned
for the longest known ingredient or class phrase at each position, so word order, punctuation,
case and salt words ("HCl", "sodium", "besylate") do not matter.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Final, NamedTuple

from eprescribe.drugs.errors import DrugDataError
from eprescribe.drugs.forms import DOSE_FORMS, DescribedForm, FormKey, description_form
from eprescribe.drugs.model import Allergen, Drug
from eprescribe.drugs.names import SALT_WORDS, parse_drug_name, text_strengths, words
from eprescribe.drugs.strength import Strength, canonical_strength, same_strength
from eprescribe.drugs.vocabulary import Vocabulary

__all__ = ["AllergenResolver", "DescriptionIndex", "PhraseScanner", "ingredient_phrases"]


class PhraseScanner:
    """Finds known multi-word phrases in text, longest match first."""

    def __init__(self, phrases: Mapping[str, str]) -> None:
        self._phrases = dict(phrases)
        self._longest = max((len(p.split()) for p in self._phrases), default=1)

    def scan(self, text: str) -> list[str]:
        """Values of the phrases found, in text order, each once."""
        tokens = words(text)
        found: dict[str, None] = {}
        position = 0
        while position < len(tokens):
            hit = self._match_at(tokens, position)
            if hit is None:
                position += 1
                continue
            length, value = hit
            found[value] = None
            position += length
        return list(found)

    def _match_at(self, tokens: list[str], position: int) -> tuple[int, str] | None:
        for length in range(min(self._longest, len(tokens) - position), 0, -1):
            phrase = " ".join(tokens[position : position + length])
            value = self._phrases.get(phrase)
            if value is None and length == 1 and phrase.endswith("s"):
                value = self._phrases.get(phrase[:-1])  # "penicillins", "sulfas"
            if value is not None:
                return length, value
        return None


# Phrases naming a fixed combination of ingredients rather than one ingredient.
_COMBINATION_PHRASES: Final[Mapping[str, tuple[str, ...]]] = {
    "mixed amphetamine salts": ("amphetamine", "dextroamphetamine"),
    "mixed amphetamine salt": ("amphetamine", "dextroamphetamine"),
}
_COMBINATION_MARK: Final = "+"


class _Entry(NamedTuple):
    drug: Drug
    totals: Mapping[str, Strength] | None
    strengths: tuple[Strength, ...]
    form: FormKey
    hours: int | None


class DescriptionIndex:
    """Resolves free-text drug descriptions to one drug of a list, or to none.

    Ambiguity: a description matches only drugs with exactly the ingredients it names and the
    strengths it writes (one strength per ingredient in either order, or a single total such as
    "20 mg" for mixed amphetamine salts). A description without a strength matches nothing.
    When a dose form is written, only that form counts; "tablet" without a release word means
    the immediate-release tablet when one exists, otherwise any tablet. A route word ("eye",
    "nasal", "topical") must agree. If more than one drug is still left, nothing is returned:
    "metformin 500 mg" (tablet or extended-release tablet?) and "bupropion 150 mg ER" (12- or
    24-hour?) are refused rather than guessed.
    """

    def __init__(self, drugs: Iterable[Drug], phrases: Mapping[str, str]) -> None:
        known = set(phrases.values())
        combinations = {
            phrase: _COMBINATION_MARK.join(names)
            for phrase, names in _COMBINATION_PHRASES.items()
            if phrase not in phrases and known.issuperset(names)
        }
        self._scanner = PhraseScanner({**phrases, **combinations})
        self._by_ingredients: dict[frozenset[str], list[_Entry]] = {}
        for drug in drugs:
            self._by_ingredients.setdefault(drug.ingredient_names, []).append(_entry(drug))

    def find(self, text: str) -> Drug | None:
        names = self.ingredients_in(text)
        strengths = text_strengths(text)
        entries = self._by_ingredients.get(frozenset(names), [])
        if not names or not strengths or not entries:
            return None
        entries = [e for e in entries if _strengths_match(e, names, strengths)]
        tokens = words(text)
        entries = _by_form(entries, description_form(tokens, text.lower()))
        if len(entries) > 1:
            entries = _by_salt(entries, SALT_WORDS.intersection(tokens))
        return entries[0].drug if len(entries) == 1 else None

    def ingredients_in(self, text: str) -> list[str]:
        """Ingredient ids named in the text, in text order, each once."""
        found = self._scanner.scan(text)
        return list(dict.fromkeys(n for value in found for n in _expand(value)))


def ingredient_phrases(drugs: Iterable[Drug], vocabulary: Vocabulary) -> dict[str, str]:
    """Ingredient words (names, synonyms, precise names) -> ingredient id."""
    phrases: dict[str, str] = {}
    for info in vocabulary.ingredients.values():
        for phrase in (info.name, *info.synonyms, *info.precise):
            phrases[" ".join(words(phrase))] = info.name
    for drug in drugs:  # imported products may name ingredients the vocabulary lacks
        for ingredient in drug.ingredients:
            phrases.setdefault(" ".join(words(ingredient.name)), ingredient.name)
    return phrases


def _expand(value: str) -> tuple[str, ...]:
    if _COMBINATION_MARK in value:
        return tuple(value.split(_COMBINATION_MARK))
    return (value,)


def _entry(drug: Drug) -> _Entry:
    strengths: list[Strength | None] = []
    for ingredient in drug.ingredients:
        if ingredient.strength is None or ingredient.unit is None:
            strengths.append(None)
        else:
            strengths.append(canonical_strength(ingredient.strength, ingredient.unit))
    try:
        hours = parse_drug_name(drug.name).hours
    except DrugDataError:  # an imported product with a form RxNorm names differently
        hours = None
    form = DOSE_FORMS.get(drug.dose_form, FormKey(drug.dose_form.lower()))
    if hours is not None and form.release is None:
        # "72 HR ... Transdermal System": a timed form releases over its interval, and a
        # description saying "72 hour" implies extended release.
        form = FormKey(form.kind, "ER")
    known = tuple(s for s in strengths if s is not None)
    totals = _totals(drug, strengths) if len(known) == len(strengths) else None
    return _Entry(drug, totals, known, form, hours)


def _totals(drug: Drug, strengths: list[Strength | None]) -> dict[str, Strength] | None:
    """Strength per ingredient name, summing repeated salts of one ingredient."""
    totals: dict[str, Strength] = {}
    for ingredient, strength in zip(drug.ingredients, strengths, strict=True):
        if strength is None:
            return None
        previous = totals.get(ingredient.name)
        if previous is not None and previous.unit != strength.unit:
            return None
        value = strength.value + (previous.value if previous else Decimal(0))
        totals[ingredient.name] = Strength(value, strength.unit)
    return totals


def _strengths_match(entry: _Entry, names: list[str], given: list[Strength]) -> bool:
    if entry.totals is None:
        return False
    expected = [entry.totals[name] for name in names]
    if len(given) == len(expected):
        return _any_order(given, expected)
    if len(given) == len(entry.strengths):
        # One strength per listed part, e.g. the four salts of mixed amphetamine salts.
        return _any_order(given, list(entry.strengths))
    if len(given) == 1 and len(entry.strengths) > 1:
        return _single_total(given[0], entry.strengths)
    return False


def _any_order(given: list[Strength], expected: list[Strength]) -> bool:
    return any(
        all(same_strength(g, e) for g, e in zip(given, order, strict=True))
        for order in itertools.permutations(expected)
    )


def _single_total(given: Strength, strengths: tuple[Strength, ...]) -> bool:
    units = {s.unit for s in strengths}
    if len(units) != 1:
        return False
    return same_strength(given, Strength(sum((s.value for s in strengths), Decimal(0)), *units))


def _by_form(entries: list[_Entry], form: DescribedForm) -> list[_Entry]:
    if form.route is not None:
        entries = [e for e in entries if e.drug.route == form.route or _oral_alias(e, form)]
    if form.kind is not None:
        entries = [e for e in entries if e.form.kind == form.kind]
    if form.release is not None:
        entries = [e for e in entries if e.form.release == form.release]
    elif form.kind is not None and any(e.form.release is None for e in entries):
        entries = [e for e in entries if e.form.release is None]
    if form.hours is not None:
        entries = [e for e in entries if e.hours in (None, form.hours)]
    return entries


def _by_salt(entries: list[_Entry], salts: frozenset[str]) -> list[_Entry]:
    """Salt words are ignored for matching but break a tie: "doxycycline hyclate" picks the
    hyclate capsule over the monohydrate one."""
    if not salts:
        return entries
    return [e for e in entries if salts & _salts(e.drug)] or entries


def _salts(drug: Drug) -> frozenset[str]:
    return SALT_WORDS.intersection(
        itertools.chain.from_iterable(words(i.basis or "") for i in drug.ingredients)
    )


def _oral_alias(entry: _Entry, form: DescribedForm) -> bool:
    # "Sublingual Tablet" descriptions often also say "oral"; the form word decides then.
    return form.route == "oral" and entry.drug.route in ("sublingual", "buccal")


class AllergenResolver:
    """Maps allergy text ("penicillin", "Sulfa drugs", "codeine phosphate") to ingredient and
    class ids. Class words come from each class's id, name and synonyms; ingredient words from
    the ingredient table. Text naming nothing known gives an empty ``Allergen``."""

    def __init__(self, vocabulary: Vocabulary, ingredient_phrases: Mapping[str, str]) -> None:
        phrases = {phrase: f"i:{name}" for phrase, name in ingredient_phrases.items()}
        for drug_class in vocabulary.classes.values():
            for phrase in (drug_class.id.replace("_", " "), drug_class.name, *drug_class.synonyms):
                phrases.setdefault(" ".join(words(phrase)), f"c:{drug_class.id}")
        self._scanner = PhraseScanner(phrases)

    def resolve(self, text: str) -> Allergen:
        hits = self._scanner.scan(text)
        return Allergen(
            text=text,
            ingredients=frozenset(_ids(hits, "i:")),
            classes=frozenset(_ids(hits, "c:")),
        )


def _ids(hits: list[str], prefix: str) -> Iterator[str]:
    return (hit[len(prefix) :] for hit in hits if hit.startswith(prefix))
