from eprescribe.checks import Severity

from .helpers import codes, context, finding

SIGNATURE = "Header/DigitalSignature"
SCHEDULE = "Body/NewRx/MedicationPrescribed/DrugCoded/DEASchedule/Code"


def test_signed_controlled_prescription_is_clean() -> None:
    assert "EPCS_SIGNATURE_MISSING" not in codes(context(controlled=True))


def test_controlled_without_signature_is_a_hard_stop() -> None:
    found = finding(context(controlled=True, omit=(SIGNATURE,)), "EPCS_SIGNATURE_MISSING")
    assert found.severity is Severity.HARD_STOP
    assert "EPCS_SIGNATURE_MISSING" not in codes(context())  # unsigned, not controlled


def test_schedule_ii_with_refills() -> None:
    found = finding(context(controlled=True, refills="2"), "REFILLS_NOT_ALLOWED")
    assert found.evidence == {"schedule": "C-II", "refills": 2}
    assert "REFILLS_NOT_ALLOWED" not in codes(context(controlled=True, refills="0"))


def test_schedule_iii_iv_refill_limit() -> None:
    for schedule in ("C48676", "C48677"):
        six = context(controlled=True, refills="6", replace={SCHEDULE: schedule})
        five = context(controlled=True, refills="5", replace={SCHEDULE: schedule})
        assert "REFILLS_EXCEED_LIMIT" in codes(six)
        assert "REFILLS_EXCEED_LIMIT" not in codes(five)


def test_schedule_v_has_no_federal_refill_limit() -> None:
    assert codes(context(controlled=True, refills="11", replace={SCHEDULE: "C48679"})) == []


def test_non_controlled_refills_are_not_limited() -> None:
    assert codes(context(refills="11")) == []
