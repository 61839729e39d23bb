import pytest

from eprescribe.checks import PatientMatch, Severity

from .helpers import codes, context, finding, with_patient


def test_weak_match_needs_review() -> None:
    match = PatientMatch("weak", ("p-1",), ("gender", "postal_code"))
    found = finding(with_patient(context(), patient_match=match), "PATIENT_MATCH_REVIEW")
    assert found.severity is Severity.WARNING
    assert "gender and postal code" in found.message
    assert found.evidence == {
        "kind": "weak",
        "candidates": ["p-1"],
        "differences": ["gender", "postal_code"],
    }


def test_ambiguous_match_needs_review() -> None:
    match = PatientMatch("ambiguous", ("p-1", "p-2"))
    found = finding(with_patient(context(), patient_match=match), "PATIENT_MATCH_REVIEW")
    assert "2 profiles" in found.message
    assert found.evidence["candidates"] == ["p-1", "p-2"]


@pytest.mark.parametrize("match", [PatientMatch("exact", ("p-1",)), PatientMatch("new"), None])
def test_exact_new_or_unknown_match_is_fine(match: PatientMatch | None) -> None:
    assert "PATIENT_MATCH_REVIEW" not in codes(with_patient(context(), patient_match=match))
