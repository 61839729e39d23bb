"""The prescribed drug against the patient's recorded allergies (prescription-checks.md §5).

Severity by how the drug matches an allergy entry:

- ``ingredient`` (the drug contains what the patient is allergic to): hard stop.
- ``class`` (the drug is in a class the entry names, or in the allergy group of a named
  ingredient, e.g. amoxicillin for "penicillin"): hard stop as well. The reference marks a
  class as an allergy group only where hypersensitivity to one member is treated as
  hypersensitivity to all (labels contraindicate amoxicillin after a penicillin reaction), so
  this is the same clinical fact as an ingredient match, not a weaker guess; dispensing it
  should need the prescriber, not just a pharmacist's override.
- ``cross_reactivity`` (lower-certainty cross-sensitivity, e.g. cephalosporin allergy and a
  penicillin): the severity the reference gives it, a warning where it gives none.

One finding per allergy entry: the strongest of its matches. Entries the reference cannot read
("peanuts") give nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from eprescribe.drugs import AllergyMatch

from .base import Check, CheckContext, Finding, Severity

_STRENGTH = {"ingredient": 0, "class": 1, "cross_reactivity": 2}


def allergy(context: CheckContext) -> Iterator[Finding]:
    reference, drug = context.reference, context.drug
    if reference is None or drug is None:
        return
    for text in context.allergies:
        allergen = reference.resolve_allergen(text)
        if not allergen.known:
            continue
        matches = reference.allergy_matches(allergen, drug)
        if not matches:
            continue
        match = min(matches, key=_rank)
        yield Finding(
            "DRUG_ALLERGY",
            _severity(match),
            f"{drug.name} and the recorded allergy {text!r}: {match.message.rstrip('.')}.",
            {
                "allergy": text,
                "match": match.kind,
                "term": match.term,
                "drug": drug.name,
            },
        )


def _rank(match: AllergyMatch) -> tuple[int, int]:
    return _STRENGTH[match.kind], 0 if match.severity == "hard_stop" else 1


def _severity(match: AllergyMatch) -> Severity:
    if match.kind == "cross_reactivity":
        return Severity(match.severity or Severity.WARNING)
    return Severity.HARD_STOP


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (allergy,)
