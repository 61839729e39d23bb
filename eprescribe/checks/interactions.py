"""The prescribed drug against the patient's other medications, active and pending: drug-drug
interactions (ONC high-priority pairs and other well-established ones) and therapeutic
duplication (prescription-checks.md §5, §7). A finding on a pending prescription says so: the
pharmacist sees the pair before either is verified.

Medications the reference could not identify are skipped; findings come in the order of the
other medications' prescription IDs, so the caller's ordering does not matter.

``DrugReference.interactions`` scans every interaction for every pair; most pairs share none,
so a pair is asked about only when both drugs name an ingredient or class listed in one
interaction (a drug matches a side only through a listed ingredient or class), which keeps the
answer the reference's own and makes the check about twenty times cheaper.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from eprescribe.drugs import Drug, DrugReference, Interaction

from .base import ActiveMedication, Check, CheckContext, Finding, Severity


def interaction(context: CheckContext) -> Iterator[Finding]:
    reference, drug = context.reference, context.drug
    if reference is None or drug is None:
        return
    index = _interaction_terms(reference)
    mine = _candidates(index, drug)
    # several of the patient's prescriptions are often the same drug: each asked about once
    known: dict[int, list[Interaction]] = {}
    for active, other in _identified(context.active):
        if (pair := known.get(id(other))) is None:
            pair = known[id(other)] = (
                []
                if mine.isdisjoint(_candidates(index, other))
                else sorted(reference.interactions(drug, other), key=lambda i: i.id)
            )
        for found in pair:
            yield Finding(
                "DRUG_INTERACTION",
                Severity(found.severity),
                f"{drug.name} with {active.label(other.name)}: {found.message}",
                {
                    "interaction": found.id,
                    "drug": drug.name,
                    **active.evidence(other.name),
                    "source": found.source,
                },
            )


def duplication(context: CheckContext) -> Iterator[Finding]:
    reference, drug = context.reference, context.drug
    if reference is None or drug is None:
        return
    known: dict[int, _Shared | None] = {}
    for active, other in _identified(context.active):
        if id(other) not in known:
            known[id(other)] = _shared(reference, drug, other)
        if (shared := known[id(other)]) is not None:
            yield _duplicate(drug, active, other, shared)


@dataclass(frozen=True, slots=True)
class _Shared:
    """What two drugs have in common for therapeutic duplication."""

    kind: str  # "ingredients" or "classes"
    ids: tuple[str, ...]
    names: tuple[str, ...]
    words: str


def _shared(reference: DrugReference, drug: Drug, other: Drug) -> _Shared | None:
    # the same ingredient is the more precise finding, so it hides a shared class
    ingredients = tuple(sorted(reference.shared_ingredients(drug, other)))
    if ingredients:
        return _Shared("ingredients", ingredients, ingredients, "the same ingredient")
    classes = tuple(sorted(reference.shared_classes_for_duplication(drug, other)))
    if classes:
        names = tuple(reference.classes[c].name for c in classes)
        return _Shared("classes", classes, names, "the same therapeutic class")
    return None


def _duplicate(drug: Drug, active: ActiveMedication, other: Drug, shared: _Shared) -> Finding:
    kind, words, names = shared.kind, shared.words, shared.names
    return Finding(
        "THERAPEUTIC_DUPLICATION",
        Severity.WARNING,
        f"{drug.name} has {words} ({', '.join(names)}) as {active.label(other.name)}.",
        {kind: list(shared.ids), "drug": drug.name, **active.evidence(other.name)},
    )


def _identified(active: tuple[ActiveMedication, ...]) -> list[tuple[ActiveMedication, Drug]]:
    return sorted(
        ((medication, medication.drug) for medication in active if medication.drug is not None),
        key=lambda pair: pair[0].prescription_id,
    )


@functools.lru_cache(maxsize=4)  # a reference is immutable and long-lived
def _interaction_terms(reference: DrugReference) -> Mapping[str, frozenset[str]]:
    """Ingredient or class -> ids of the interactions listing it on either side."""
    index: dict[str, set[str]] = {}
    for found in reference.vocabulary.interactions:
        for term in _terms(found):
            index.setdefault(term, set()).add(found.id)
    return {term: frozenset(ids) for term, ids in index.items()}


def _terms(interaction: Interaction) -> frozenset[str]:
    left, right = interaction.left, interaction.right
    return left.ingredients | left.classes | right.ingredients | right.classes


def _candidates(index: Mapping[str, frozenset[str]], drug: Drug) -> frozenset[str]:
    """Interactions the drug could take part in."""
    found: frozenset[str] = frozenset()
    for term in drug.ingredient_names | drug.classes:
        found |= index.get(term, frozenset())
    return found


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (interaction, duplication)
