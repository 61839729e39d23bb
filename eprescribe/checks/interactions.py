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

from eprescribe.drugs import Drug, DrugReference, Interaction

from .base import ActiveMedication, Check, CheckContext, Finding, Severity


def interaction(context: CheckContext) -> Iterator[Finding]:
    reference, drug = context.reference, context.drug
    if reference is None or drug is None:
        return
    index = _interaction_terms(reference)
    mine = _candidates(index, drug)
    for active, other in _identified(context.active):
        if mine.isdisjoint(_candidates(index, other)):
            continue
        for found in sorted(reference.interactions(drug, other), key=lambda i: i.id):
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
    for active, other in _identified(context.active):
        finding = _duplicate(reference, drug, active, other)
        if finding is not None:
            yield finding


def _duplicate(
    reference: DrugReference, drug: Drug, active: ActiveMedication, other: Drug
) -> Finding | None:
    # the same ingredient is the more precise finding, so it hides a shared class
    shared = sorted(reference.shared_ingredients(drug, other))
    kind, names, words = "ingredients", shared, "the same ingredient"
    if not shared:
        shared = sorted(reference.shared_classes_for_duplication(drug, other))
        kind, words = "classes", "the same therapeutic class"
        names = [reference.classes[c].name for c in shared]
    if not shared:
        return None
    return Finding(
        "THERAPEUTIC_DUPLICATION",
        Severity.WARNING,
        f"{drug.name} has {words} ({', '.join(names)}) as {active.label(other.name)}.",
        {kind: shared, "drug": drug.name, **active.evidence(other.name)},
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
