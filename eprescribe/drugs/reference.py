"""``DrugReference``: the bundled drug list plus an imported RxNorm release and FDA products,
with the lookups the prescription checks need (identification, interactions, duplication,
allergy, dose maximum) and the label's auxiliary warnings.

A reference is immutable: ``with_rxnorm`` and ``with_products`` return a new one, so the cached
bundled reference can be shared by every worker thread and request without locking.
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
    SCHEDULE_LABELS,
    Allergen,
    AllergyMatch,
    Drug,
    DrugClass,
    Identification,
    Ingredient,
    Interaction,
    InteractionSide,
    MaxDose,
)
from eprescribe.drugs.ndc import ndc_candidates, ndc_format_valid
from eprescribe.drugs.rxnorm import CLINICAL, PACKS, RxNormDrug, clinical_drug
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
        self._by_rxcui = {
            code: drug
            for drug in self.drugs
            for code in (*drug.other_rxcuis, *((drug.rxcui,) if drug.rxcui else ()))
        }
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

    def with_rxnorm(self, imported: Iterable[RxNormDrug]) -> DrugReference:
        """A new reference that also knows the drugs of an RxNorm release; this one is
        unchanged.

        An SCD named like a known drug, or with its ingredients, strengths and dose form, gives
        that drug its RxCUI, NDCs and DEA schedule; any other SCD becomes a drug of its own
        (distinct SCDs are never merged with each other). An SBD, and a pack holding a single
        drug, add their RxCUI and NDCs to that drug. A pack of several drugs becomes a drug
        with all their ingredients, no strengths and no dose maximum (it still counts for
        interactions, duplication and allergies). A drug the release gives no schedule takes
        the one every known drug with the same ingredients shares, if they share one.
        """
        merge = _RxNormMerge(self)
        for item in sorted(imported, key=_rxnorm_order):
            merge.add(item)
        return DrugReference(self.vocabulary, merge.drugs())

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

    def auxiliary_warnings(self, drug: Drug) -> tuple[str, ...]:
        """The label's auxiliary warnings for ``drug``, most important first, each text once
        (two entries of the data may share a text for different drugs)."""
        texts = (w.text for w in self.vocabulary.auxiliary_warnings if w.matches(drug))
        return tuple(dict.fromkeys(texts))

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
    """What imported listings add to one drug: NDCs, FDA class strings, DEA schedule, and
    RxCUIs from an RxNorm import (the first SCD's becomes the drug's own when it has none)."""

    ndcs: dict[str, None] = dataclasses.field(default_factory=dict)
    pharm_classes: dict[str, None] = dataclasses.field(default_factory=dict)
    dea_schedule: str | None = None
    rxcuis: dict[str, None] = dataclasses.field(default_factory=dict)

    def add(self, imported: Drug) -> None:
        self.ndcs.update(dict.fromkeys(imported.ndcs))
        self.pharm_classes.update(dict.fromkeys(imported.pharm_classes))
        # The FDA file states the schedule per product, so it wins over the bundled value.
        self.dea_schedule = imported.dea_schedule or self.dea_schedule

    def add_rxnorm(self, item: RxNormDrug) -> None:
        self.rxcuis[item.rxcui] = None
        self.ndcs.update(dict.fromkeys(item.ndcs))
        # Labels may disagree (an SCD and its brands); the strictest schedule stands.
        self.dea_schedule = _stricter(self.dea_schedule, item.dea_schedule)

    def apply(self, drug: Drug) -> Drug:
        codes = [code for code in (drug.rxcui, *drug.other_rxcuis, *self.rxcuis) if code]
        codes = list(dict.fromkeys(codes))
        return dataclasses.replace(
            drug,
            ndcs=tuple(dict.fromkeys(drug.ndcs + tuple(self.ndcs))),
            pharm_classes=tuple(dict.fromkeys(drug.pharm_classes + tuple(self.pharm_classes))),
            dea_schedule=self.dea_schedule or drug.dea_schedule,
            rxcui=codes[0] if codes else None,
            other_rxcuis=tuple(codes[1:]),
        )


def _stricter(a: str | None, b: str | None) -> str | None:
    """The stricter of two NCI schedule codes (C-II over C-IV); None only when both are."""
    if a is None or b is None:
        return a or b
    order = list(SCHEDULE_LABELS)
    return a if order.index(a) <= order.index(b) else b


def _rxnorm_order(item: RxNormDrug) -> int:
    """SCDs first, so brands and packs find the drug they name."""
    return 0 if item.tty == CLINICAL else 2 if item.tty in PACKS else 1


class _RxNormMerge:
    """Places each drug of an RxNorm release on a drug of the reference (see ``with_rxnorm``)."""

    def __init__(self, reference: DrugReference) -> None:
        self._vocabulary = reference.vocabulary
        self._drugs = {drug.name.lower(): drug for drug in reference.drugs}
        self._by_identity = _identity_index(self._drugs.values())
        self._schedules = _schedules_by_ingredients(self._drugs.values())
        self._additions: dict[str, _Additions] = {}
        self._placed: dict[str, str] = {}  # RxCUI -> key of the drug it names

    def add(self, item: RxNormDrug) -> None:
        key = self._place(item)
        if key is not None:
            self._placed[item.rxcui] = key
            self._additions.setdefault(key, _Additions()).add_rxnorm(item)

    def drugs(self) -> Iterable[Drug]:
        return (
            self._additions[key].apply(drug) if key in self._additions else drug
            for key, drug in self._drugs.items()
        )

    def _place(self, item: RxNormDrug) -> str | None:
        if item.clinical_rxcui in self._placed:
            return self._placed[item.clinical_rxcui]
        if item.tty in PACKS:
            placed = (self._placed[c] for c in item.contents if c in self._placed)
            targets = list(dict.fromkeys(placed))
            if len(targets) == 1:
                return targets[0]
            return self._new(self._pack(item, targets)) if targets else None
        drug = clinical_drug(item, self._vocabulary)
        if drug is None:
            return None
        key = drug.name.lower()
        if key in self._drugs:
            return key
        strengths = all(i.strength is not None for i in drug.ingredients)
        known = self._by_identity.get(_identity(drug)) if strengths else None
        return known or self._new(drug)

    def _new(self, drug: Drug) -> str:
        key = drug.name.lower()
        schedule = drug.dea_schedule or self._schedules.get(drug.ingredient_names)
        # Codes come back through the additions, once for every item naming the drug.
        self._drugs.setdefault(
            key, dataclasses.replace(drug, dea_schedule=schedule, rxcui=None, ndcs=())
        )
        return key

    def _pack(self, item: RxNormDrug, targets: list[str]) -> Drug:
        members = [self._drugs[key] for key in targets]
        names = sorted({name for member in members for name in member.ingredient_names})
        routes = {member.route for member in members}
        schedule = item.dea_schedule
        for member in members:
            schedule = _stricter(schedule, member.dea_schedule)
        return Drug(
            name=item.name,
            ingredients=tuple(Ingredient(name, None, None) for name in names),
            dose_form="Pack",
            route=routes.pop() if len(routes) == 1 else "",
            classes=frozenset().union(*(member.classes for member in members)),
            dea_schedule=schedule,
            rxcui=item.rxcui,
        )


def _schedules_by_ingredients(drugs: Iterable[Drug]) -> dict[frozenset[str], str]:
    """Ingredient set -> the schedule every drug with exactly those ingredients has, where
    they all have the same one."""
    seen: dict[frozenset[str], set[str | None]] = {}
    for drug in drugs:
        seen.setdefault(drug.ingredient_names, set()).add(drug.dea_schedule)
    return {
        names: schedule
        for names, schedules in seen.items()
        if len(schedules) == 1 and (schedule := next(iter(schedules))) is not None
    }
