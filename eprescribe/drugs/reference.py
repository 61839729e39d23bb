"""``DrugReference``: the bundled drug list plus imported FDA products, with the lookups the
prescription checks need (identification, interactions, duplication, allergy, dose maximum).

A reference is immutable: ``with_products`` returns a new one, so the cached bundled reference
can be shared by every worker thread and request without locking.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal

from eprescribe.drugs.catalog import build_drug, read_drug_rows
from eprescribe.drugs.errors import DrugDataError
from eprescribe.drugs.fda import ImportedProduct
from eprescribe.drugs.forms import DOSE_FORMS, FormKey
from eprescribe.drugs.matching import AllergenResolver, DescriptionIndex, ingredient_phrases
from eprescribe.drugs.model import (
    Allergen,
    AllergyMatch,
    Drug,
    DrugClass,
    Identification,
    Interaction,
    InteractionSide,
    MaxDose,
)
from eprescribe.drugs.ndc import ndc_candidates, ndc_format_valid
from eprescribe.drugs.strength import canonical_strength
from eprescribe.drugs.vocabulary import Vocabulary, read_data_text

__all__ = ["DrugReference"]

# What makes two listings the same clinical drug: ingredients with canonical strengths, and
# the dose form's kind and release.
_Identity = tuple[frozenset[tuple[str, Decimal | None, str | None]], FormKey]


class DrugReference:
    """Drugs with O(1) lookups by NDC, RxCUI and name, and tolerant lookup by description."""

    def __init__(self, vocabulary: Vocabulary, drugs: Iterable[Drug]) -> None:
        self.vocabulary = vocabulary
        self.drugs: tuple[Drug, ...] = tuple(drugs)
        self._by_name = _unique_index(self.drugs)
        self._by_ndc = {ndc: drug for drug in self.drugs for ndc in drug.ndcs}
        self._by_rxcui = {drug.rxcui: drug for drug in self.drugs if drug.rxcui}
        phrases = ingredient_phrases(self.drugs, vocabulary)
        self._descriptions = DescriptionIndex(self.drugs, phrases)
        self._allergens = AllergenResolver(vocabulary, phrases)

    @classmethod
    def bundled(cls) -> DrugReference:
        """The reference shipped with the package (loaded once, then cached)."""
        return _bundled()

    @property
    def classes(self) -> Mapping[str, DrugClass]:
        return self.vocabulary.classes

    def with_products(self, products: Iterable[ImportedProduct]) -> DrugReference:
        """A new reference that also knows these FDA products; this one is unchanged.

        A product with the same ingredients, strengths and dose form as a known drug adds its
        package NDCs (and its DEA schedule, which the FDA file states per product) to that
        drug. Other products become drugs of their own, grouped by the same identity, with
        classes from PHARM_CLASSES plus the ingredient table, and the ingredient table's
        maximum daily dose for the route.
        """
        drugs = {drug.name.lower(): drug for drug in self.drugs}
        by_identity = _identity_index(drugs.values())
        # Accumulate, then build each drug once: thousands of listings (labelers, repackagers)
        # can collapse into one clinical drug.
        additions: dict[str, _Additions] = {}
        for product in products:
            drug = self._drug_from_product(product)
            key = _identity(drug)
            lowered = drug.name.lower()
            name = by_identity.get(key) or (lowered if lowered in drugs else None)
            if name is None:
                name = lowered
                drugs[name] = dataclasses.replace(drug, ndcs=(), pharm_classes=())
                by_identity[key] = name
            additions.setdefault(name, _Additions()).add(drug)
        return DrugReference(
            self.vocabulary,
            (additions[n].apply(d) if n in additions else d for n, d in drugs.items()),
        )

    # --- identification ---

    def by_name(self, name: str) -> Drug | None:
        """Exact (case-insensitive) RxNorm-style name."""
        return self._by_name.get(name.strip().lower())

    def by_ndc(self, code: str) -> Drug | None:
        """The drug with this package NDC (10- or 11-digit, hyphenated or not).

        An unhyphenated 10-digit NDC is ambiguous: each layout's 11-digit reading is tried
        against the known codes and a drug is returned only if exactly one reading is known.
        """
        found = [ndc for ndc in ndc_candidates(code) if ndc in self._by_ndc]
        return self._by_ndc[found[0]] if len(found) == 1 else None

    def by_rxcui(self, code: str) -> Drug | None:
        return self._by_rxcui.get(code.strip())

    def by_description(self, text: str) -> Drug | None:
        """The one drug a free-text description names, or None when it names none or several.

        Case, word order, salt words and unit spelling do not matter; see ``DescriptionIndex``
        for how ambiguity is refused.
        """
        return self._descriptions.find(text)

    def identify(self, ndc: str | None, rxcui: str | None, description: str) -> Identification:
        """Find the prescribed drug by NDC, then RxNorm code, then description."""
        ndc_valid = None if ndc is None else ndc_format_valid(ndc)
        if ndc and ndc_valid and (drug := self.by_ndc(ndc)):
            return Identification(drug, "ndc", ndc_valid)
        if rxcui and (drug := self.by_rxcui(rxcui)):
            return Identification(drug, "rxnorm", ndc_valid)
        if description and (drug := self.by_description(description)):
            return Identification(drug, "description", ndc_valid)
        return Identification(None, None, ndc_valid)

    # --- checks ---

    def interactions(self, a: Drug, b: Drug) -> list[Interaction]:
        """Interactions between two drugs, whichever side each one matches."""
        return [
            interaction
            for interaction in self.vocabulary.interactions
            if self._pair(interaction, a, b) or self._pair(interaction, b, a)
        ]

    def shared_classes_for_duplication(self, a: Drug, b: Drug) -> frozenset[str]:
        """Classes both drugs share that count for therapeutic duplication (tags such as CYP
        inhibition or QT effect never do)."""
        return frozenset(c for c in a.classes & b.classes if self.classes[c].duplication)

    def shared_ingredients(self, a: Drug, b: Drug) -> frozenset[str]:
        return a.ingredient_names & b.ingredient_names

    def max_daily(self, drug: Drug) -> tuple[MaxDose, ...]:
        return drug.max_daily

    def resolve_allergen(self, text: str) -> Allergen:
        """Ingredients and classes an allergy entry names ("penicillin", "sulfa", "codeine")."""
        return self._allergens.resolve(text)

    def allergy_matches(self, allergen: Allergen, drug: Drug) -> list[AllergyMatch]:
        """Why ``drug`` is a problem for a patient allergic to ``allergen``, if it is.

        An ingredient allergy extends to the ingredient's allergy-group classes (an amoxicillin
        allergy covers other penicillins); cross-reactivities are reported only where no direct
        match exists.
        """
        matches = [
            AllergyMatch("ingredient", name, f"contains {name}")
            for name in sorted(allergen.ingredients & drug.ingredient_names)
        ]
        classes = allergen.classes | self._allergy_groups(allergen.ingredients)
        matches += [
            AllergyMatch("class", c, f"in class: {self.classes[c].name}")
            for c in sorted(classes & drug.classes)
            if not matches
        ]
        if matches:
            return matches
        return [
            AllergyMatch("cross_reactivity", cross.drug_class, cross.message, cross.severity)
            for cross in self.vocabulary.cross_reactivities
            if cross.allergy_class in classes and cross.drug_class in drug.classes
        ]

    # --- internals ---

    def _allergy_groups(self, ingredients: frozenset[str]) -> frozenset[str]:
        known = (self.vocabulary.ingredients.get(name) for name in ingredients)
        return frozenset(
            c
            for info in known
            if info is not None
            for c in info.classes
            if self.classes[c].allergy_group
        )

    def _pair(self, interaction: Interaction, a: Drug, b: Drug) -> bool:
        if not (interaction.left.matches(a) and interaction.right.matches(b)):
            return False
        # The same ingredient on both sides (methadone 5 mg and methadone 10 mg against the
        # QT pair) is a duplication, not an interaction.
        left, right = self._triggers(interaction.left, a), self._triggers(interaction.right, b)
        return any(x != y for x in left for y in right)

    def _triggers(self, side: InteractionSide, drug: Drug) -> frozenset[str]:
        """The drug's ingredients that make it match ``side``."""
        hits = set(drug.ingredient_names & side.ingredients)
        for name in drug.ingredient_names:
            info = self.vocabulary.ingredients.get(name)
            if info is not None and info.classes & drug.classes & side.classes:
                hits.add(name)
        # An imported ingredient the table does not know: the class came from the product.
        return frozenset(hits) or drug.ingredient_names

    def _drug_from_product(self, product: ImportedProduct) -> Drug:
        known = [self.vocabulary.ingredients.get(i.name) for i in product.ingredients]
        table_classes = set().union(*(info.classes for info in known if info is not None))
        route = product.route
        return Drug(
            name=product.name,
            ingredients=product.ingredients,
            dose_form=product.dose_form,
            route=route,
            classes=self.vocabulary.route_classes(product.classes | table_classes, route),
            dea_schedule=product.dea_schedule,
            max_daily=tuple(
                MaxDose(info.name, *info.max_daily[route])
                for info in {i.name: i for i in known if i is not None}.values()
                if route in info.max_daily
            ),
            ndcs=product.package_ndcs,
            pharm_classes=product.pharm_classes,
        )


@functools.cache
def _bundled() -> DrugReference:
    vocabulary = Vocabulary.bundled()
    rows = read_drug_rows(read_data_text("drugs.tsv").splitlines())
    return DrugReference(vocabulary, (build_drug(row, vocabulary) for row in rows))


def _unique_index(drugs: Iterable[Drug]) -> dict[str, Drug]:
    index: dict[str, Drug] = {}
    for drug in drugs:
        key = drug.name.lower()
        if key in index:
            raise DrugDataError(f"two drugs named {drug.name!r}")
        index[key] = drug
    return index


def _identity(drug: Drug) -> _Identity:
    strengths = set()
    for ingredient in drug.ingredients:
        canonical = (
            None
            if ingredient.strength is None or ingredient.unit is None
            else canonical_strength(ingredient.strength, ingredient.unit)
        )
        value, unit = (None, None) if canonical is None else canonical
        # Semisolids: the FDA file writes mg/g where RxNorm-style names use MG/ML.
        strengths.add((ingredient.name, value, "MG/ML" if unit == "MG/G" else unit))
    form = DOSE_FORMS.get(drug.dose_form, FormKey(drug.dose_form.lower()))
    return frozenset(strengths), form


def _identity_index(drugs: Iterable[Drug]) -> dict[_Identity, str]:
    """Identity -> lowercase drug name, leaving out identities two known drugs share
    (bupropion 12- and 24-hour tablets look alike to the FDA file, which has no dosing
    interval)."""
    index: dict[_Identity, str] = {}
    shared: set[_Identity] = set()
    for drug in drugs:
        key = _identity(drug)
        if key in index:
            shared.add(key)
        index[key] = drug.name.lower()
    return {key: name for key, name in index.items() if key not in shared}


@dataclasses.dataclass(slots=True)
class _Additions:
    """What imported listings add to one drug: NDCs, FDA class strings, DEA schedule."""

    ndcs: dict[str, None] = dataclasses.field(default_factory=dict)
    pharm_classes: dict[str, None] = dataclasses.field(default_factory=dict)
    dea_schedule: str | None = None

    def add(self, imported: Drug) -> None:
        self.ndcs.update(dict.fromkeys(imported.ndcs))
        self.pharm_classes.update(dict.fromkeys(imported.pharm_classes))
        # The FDA file states the schedule per product, so it wins over the bundled value.
        self.dea_schedule = imported.dea_schedule or self.dea_schedule

    def apply(self, drug: Drug) -> Drug:
        return dataclasses.replace(
            drug,
            ndcs=tuple(dict.fromkeys(drug.ndcs + tuple(self.ndcs))),
            pharm_classes=tuple(dict.fromkeys(drug.pharm_classes + tuple(self.pharm_classes))),
            dea_schedule=self.dea_schedule or drug.dea_schedule,
        )
