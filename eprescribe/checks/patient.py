"""Patient identity: a prescription that does not match exactly one profile goes to a
pharmacist, never merged automatically (prescription-checks.md §3)."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Check, CheckContext, Finding, Severity

_WHY = {
    "weak": "shares name and date of birth with a profile but differs in {differences}",
    "ambiguous": "matches {count} profiles equally well",
}


def match(context: CheckContext) -> Iterator[Finding]:
    found = context.patient_match
    if found is None or found.kind not in _WHY:
        return  # exact: linked to its profile; new: a new profile, nothing to confuse
    why = _WHY[found.kind].format(
        differences=" and ".join(d.replace("_", " ") for d in found.differences) or "details",
        count=len(found.candidates),
    )
    yield Finding(
        "PATIENT_MATCH_REVIEW",
        Severity.WARNING,
        f"The patient {why}; confirm who this is before filling.",
        {
            "kind": found.kind,
            "candidates": list(found.candidates),
            "differences": list(found.differences),
        },
    )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (match,)
