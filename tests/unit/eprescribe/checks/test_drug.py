from typing import Any

import pytest

from eprescribe.checks import Severity

from .helpers import codes, context, finding, findings

PRODUCT_CODE = "Body/NewRx/MedicationPrescribed/DrugCoded/ProductCode"
SCHEDULE = "Body/NewRx/MedicationPrescribed/DrugCoded/DEASchedule/Code"
SERTRALINE = "sertraline 50 MG Oral Tablet"
OXYCODONE = "oxycodone hydrochloride 5 MG Oral Tablet"


@pytest.mark.parametrize("ndc", ["12-34", "1234567890123", "ABCDE-123-45", "00002-7597-001"])
def test_malformed_ndc(ndc: str) -> None:
    found = finding(context(ndc=ndc), "NDC_INVALID")  # no reference needed
    assert found.severity is Severity.WARNING
    assert found.evidence == {"ndc": ndc}


@pytest.mark.parametrize("ndc", ["99999000101", "0002-7597-01", "50242-040-62", "6057541121"])
def test_well_formed_ndc(ndc: str) -> None:
    assert "NDC_INVALID" not in codes(context(ndc=ndc, with_reference=True))


def test_only_product_codes_qualified_nd_are_ndcs() -> None:
    ctx = context(ndc="12-34", replace={f"{PRODUCT_CODE}/Qualifier": "UP"})
    assert "NDC_INVALID" not in codes(ctx)


def test_unknown_drug() -> None:
    found = finding(context(with_reference=True), "DRUG_UNKNOWN")
    assert found.severity is Severity.WARNING
    assert found.evidence == {
        "description": "TESTDRUG 10 MG ORAL TABLET",
        "ndc": "99999000101",
        "rxnorm": None,
    }


def test_known_drug_or_no_reference_is_not_unknown() -> None:
    assert "DRUG_UNKNOWN" not in codes(context(with_reference=True, drug_description=SERTRALINE))
    assert "DRUG_UNKNOWN" not in codes(context())


def test_missing_schedule_for_a_c_ii_drug_is_a_hard_stop() -> None:
    ctx = context(with_reference=True, drug_description=OXYCODONE, prescriber_dea="BT1234563")
    found = finding(ctx, "SCHEDULE_MISMATCH")
    assert found.severity is Severity.HARD_STOP
    assert found.evidence["message_schedule"] is None
    assert found.evidence["reference_schedule_label"] == "C-II"


def test_understated_schedule_is_a_hard_stop() -> None:
    ctx = context(
        with_reference=True,
        controlled=True,
        drug_description=OXYCODONE,
        replace={SCHEDULE: "C48677"},
    )
    found = finding(ctx, "SCHEDULE_MISMATCH")
    assert found.severity is Severity.HARD_STOP
    assert (
        found.evidence["message_schedule_label"],
        found.evidence["reference_schedule_label"],
    ) == (
        "C-IV",
        "C-II",
    )


def test_overstated_schedule_is_a_warning() -> None:
    ctx = context(with_reference=True, controlled=True, drug_description=SERTRALINE)
    found = finding(ctx, "SCHEDULE_MISMATCH")
    assert found.severity is Severity.WARNING
    assert found.evidence["reference_schedule"] is None


@pytest.mark.parametrize(
    ("description", "fields"),
    [
        (OXYCODONE, {"controlled": True}),  # C-II said and meant
        (SERTRALINE, {}),  # not controlled, no schedule sent
        (SERTRALINE, {"replace": {SCHEDULE: "C38046"}, "controlled": True}),  # "unspecified"
        (None, {"controlled": True}),  # unknown drug: nothing to compare with
    ],
)
def test_schedule_agrees(description: str | None, fields: dict[str, Any]) -> None:
    ctx = context(with_reference=True, drug_description=description, **fields)
    assert "SCHEDULE_MISMATCH" not in codes(ctx)


def test_schedule_not_compared_without_reference() -> None:
    assert "SCHEDULE_MISMATCH" not in codes(context(drug_description=OXYCODONE))


def test_c_ii_refills_when_only_the_reference_knows_the_schedule() -> None:
    ctx = context(with_reference=True, drug_description=OXYCODONE, refills="2")
    assert ctx.newrx.medication.dea_schedule is None
    found = finding(ctx, "REFILLS_NOT_ALLOWED")
    assert found.evidence == {"schedule": "C-II", "refills": 2}


def test_daily_dose_above_maximum() -> None:
    ctx = context(
        with_reference=True,
        drug_description="sertraline 100 MG Oral Tablet",
        sig_text="Take 1 tablet by mouth three times daily",
        quantity="90",
    )
    found = finding(ctx, "DOSE_EXCEEDS_MAX")
    assert found.severity is Severity.WARNING
    assert found.evidence == {
        "ingredient": "sertraline",
        "units_per_day": "3",
        "daily_amount": "300",
        "maximum": "200",
        "unit": "MG",
    }


def test_daily_dose_at_maximum_is_fine() -> None:
    ctx = context(with_reference=True, drug_description="sertraline 100 MG Oral Tablet")
    assert "DOSE_EXCEEDS_MAX" not in codes(ctx)  # twice daily: 200 mg, the maximum


def test_each_ingredient_of_a_combination_is_checked() -> None:
    ctx = context(
        with_reference=True,
        drug_description="acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
        controlled=True,
        sig_text="Take 2 tablets by mouth every 3 hours",
        quantity="160",
        days_supply="10",
    )
    over = [f.evidence for f in findings(ctx, "DOSE_EXCEEDS_MAX")]
    assert [(e["ingredient"], e["daily_amount"], e["maximum"]) for e in over] == [
        ("acetaminophen", "5200", "4000"),
        ("oxycodone", "80", "60"),
    ]


def test_structured_sig_counts() -> None:
    ctx = context(
        with_reference=True,
        drug_description="sertraline 100 MG Oral Tablet",
        structured_sig=True,
        sig_text="Take 2 tablets twice a day",
    )
    # the structured Sig says 1 tablet twice a day and wins over the text
    assert "DOSE_EXCEEDS_MAX" not in codes(ctx)


@pytest.mark.parametrize(
    ("description", "sig"),
    [
        # Sig counts tablets, the drug is a capsule: the daily amount is unknowable
        ("fluoxetine 20 MG Oral Capsule", "Take 10 tablets by mouth daily"),
        # as needed: no fixed daily amount
        ("sertraline 100 MG Oral Tablet", "Take 3 tablets by mouth every 4 hours as needed"),
        # the sig reader does not understand it
        ("sertraline 100 MG Oral Tablet", "Use as directed"),
    ],
)
def test_dose_skipped_when_unknowable(description: str, sig: str) -> None:
    ctx = context(with_reference=True, drug_description=description, sig_text=sig)
    assert "DOSE_EXCEEDS_MAX" not in codes(ctx)


def test_dose_not_checked_without_reference() -> None:
    ctx = context(
        drug_description="sertraline 100 MG Oral Tablet",
        sig_text="Take 1 tablet by mouth three times daily",
    )
    assert "DOSE_EXCEEDS_MAX" not in codes(ctx)
