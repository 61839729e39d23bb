import dataclasses
import datetime as dt

from eprescribe.checks import CheckContext, PatientMatch, Severity, interactions, run_checks

from .helpers import REFERENCE, active, codes, context, finding, findings, with_patient

SERTRALINE = "sertraline 50 MG Oral Tablet"
PHENELZINE = "phenelzine sulfate 15 MG Oral Tablet"
FLUOXETINE = "fluoxetine 20 MG Oral Capsule"


def sertraline(*medications: str) -> CheckContext:
    ctx = context(with_reference=True, drug_description=SERTRALINE)
    listed = tuple(active(d, f"rx-{n}") for n, d in enumerate(medications, start=1))
    return with_patient(ctx, active=listed)


def test_ssri_with_an_active_maoi_is_a_hard_stop() -> None:
    found = finding(sertraline(PHENELZINE), "DRUG_INTERACTION")
    assert found.severity is Severity.HARD_STOP
    assert "serotonin syndrome" in found.message
    assert SERTRALINE in found.message
    assert PHENELZINE in found.message
    assert found.evidence["interaction"] == "onc-04-serotonergic-maoi"
    assert found.evidence["active_prescription_id"] == "rx-1"
    assert (found.evidence["drug"], found.evidence["active_drug"]) == (SERTRALINE, PHENELZINE)
    assert found.evidence["source"].startswith("ONC high-priority")


def test_no_interaction_with_unrelated_or_no_active_medications() -> None:
    assert "DRUG_INTERACTION" not in codes(sertraline("atorvastatin 10 MG Oral Tablet"))
    assert "DRUG_INTERACTION" not in codes(sertraline())


def test_unidentified_active_medication_is_skipped() -> None:
    ctx = sertraline("TESTDRUG 10 MG ORAL TABLET")
    assert ctx.active[0].drug is None
    assert "DRUG_INTERACTION" not in codes(ctx)
    assert "THERAPEUTIC_DUPLICATION" not in codes(ctx)


def test_interactions_need_the_reference() -> None:
    ctx = with_patient(context(drug_description=SERTRALINE), active=(active(PHENELZINE),))
    assert "DRUG_INTERACTION" not in codes(ctx)


def test_interactions_come_in_prescription_id_order() -> None:
    ctx = context(with_reference=True, drug_description=SERTRALINE)
    ctx = with_patient(ctx, active=(active(PHENELZINE, "rx-b"), active(PHENELZINE, "rx-a")))
    found = findings(ctx, "DRUG_INTERACTION")
    assert [f.evidence["active_prescription_id"] for f in found] == ["rx-a", "rx-b"]


def test_same_ingredient_is_a_duplication() -> None:
    found = finding(sertraline("sertraline 100 MG Oral Tablet"), "THERAPEUTIC_DUPLICATION")
    assert found.severity is Severity.WARNING
    assert found.evidence == {
        "ingredients": ["sertraline"],
        "drug": SERTRALINE,
        "active_drug": "sertraline 100 MG Oral Tablet",
        "active_prescription_id": "rx-1",
    }


def test_same_duplication_class_is_a_duplication() -> None:
    found = finding(sertraline(FLUOXETINE), "THERAPEUTIC_DUPLICATION")
    assert found.evidence["classes"] == ["ssri"]
    assert "ingredients" not in found.evidence
    assert found.evidence["active_drug"] == FLUOXETINE


def test_ingredient_duplication_hides_the_class_one() -> None:
    """Same ingredient also means the same class: one finding per pair, the precise one."""
    found = findings(sertraline("sertraline 100 MG Oral Tablet"), "THERAPEUTIC_DUPLICATION")
    assert len(found) == 1
    assert "classes" not in found[0].evidence


def test_no_duplication_for_different_classes() -> None:
    ctx = sertraline("atorvastatin 10 MG Oral Tablet", PHENELZINE)
    assert "THERAPEUTIC_DUPLICATION" not in codes(ctx)


def test_checks_are_deterministic() -> None:
    ctx = with_patient(
        context(with_reference=True, drug_description=SERTRALINE),
        active=(
            active(FLUOXETINE, "rx-3"),
            active(PHENELZINE, "rx-1"),
            active("sertraline 100 MG Oral Tablet", "rx-2"),
        ),
        allergies=("sertraline", "penicillin"),
        patient_match=PatientMatch("ambiguous", ("p-1", "p-2")),
    )
    first = run_checks(ctx)
    assert first == run_checks(ctx)
    assert [f.code for f in first] == [
        "DRUG_INTERACTION",
        "THERAPEUTIC_DUPLICATION",
        "THERAPEUTIC_DUPLICATION",
        "DRUG_ALLERGY",
        "PATIENT_MATCH_REVIEW",
    ]


def test_prefilter_never_hides_an_interaction() -> None:
    """Every drug matching a side of an interaction lists it among its candidates, so the
    shortcut in the check never skips a pair the reference would report."""
    index = interactions._interaction_terms(REFERENCE)
    for interaction in REFERENCE.vocabulary.interactions:
        for drug in REFERENCE.drugs:
            if interaction.left.matches(drug) or interaction.right.matches(drug):
                assert interaction.id in interactions._candidates(index, drug), drug.name


def test_a_pending_prescription_is_named_as_such_with_its_receipt() -> None:
    received = dt.datetime(2026, 12, 6, 10, 42, tzinfo=dt.UTC)
    pending = dataclasses.replace(active(PHENELZINE, "rx-9"), pending_since=received)
    ctx = with_patient(context(with_reference=True, drug_description=SERTRALINE), active=(pending,))
    found = finding(ctx, "DRUG_INTERACTION")
    assert found.severity is Severity.HARD_STOP
    assert (
        f"with the pending prescription {PHENELZINE} (received 2026-12-06 10:42 UTC, "
        "not yet verified)"
    ) in found.message
    assert found.evidence["pending_prescription_id"] == "rx-9"
    assert found.evidence["pending_drug"] == PHENELZINE
    assert found.evidence["pending_received_at"] == received.isoformat()
    assert "active_prescription_id" not in found.evidence
    twin = dataclasses.replace(active(FLUOXETINE, "rx-8"), pending_since=received)
    duplicate = finding(with_patient(ctx, active=(twin,)), "THERAPEUTIC_DUPLICATION")
    assert "the pending prescription" in duplicate.message
    assert duplicate.evidence["pending_prescription_id"] == "rx-8"
