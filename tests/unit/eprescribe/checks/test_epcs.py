import dataclasses

from eprescribe.checks import Severity
from eprescribe.epcs import Outcome, Verification

from .helpers import codes, context, finding

REVOKED = Verification(
    Outcome.REVOKED,
    "certificate CN=Dr Synthetic is revoked",
    {"certificate_subject": "CN=Dr Synthetic", "crl": "configured"},
)


def test_a_failed_verification_is_a_hard_stop_saying_why() -> None:
    ctx = dataclasses.replace(context(controlled=True), epcs=REVOKED)
    found = finding(ctx, "EPCS_SIGNATURE_INVALID")
    assert found.severity is Severity.HARD_STOP
    assert "its certificate is revoked" in found.message
    assert found.evidence == {
        "schedule": "C-II",
        "failure": "revoked",
        "reason": "certificate CN=Dr Synthetic is revoked",
        "certificate_subject": "CN=Dr Synthetic",
        "crl": "configured",
    }


def test_each_failure_has_its_own_words() -> None:
    messages = set()
    for outcome in Outcome:
        if outcome is Outcome.VERIFIED:
            continue
        ctx = dataclasses.replace(context(), epcs=Verification(outcome, "why"))
        found = finding(ctx, "EPCS_SIGNATURE_INVALID")
        assert "schedule" not in found.evidence  # not controlled: no schedule to name
        messages.add(found.message)
    assert len(messages) == len(Outcome) - 1


def test_verified_or_no_signature_is_no_finding() -> None:
    verified = Verification(Outcome.VERIFIED, "the practitioner's signature verified")
    assert "EPCS_SIGNATURE_INVALID" not in codes(
        dataclasses.replace(context(controlled=True), epcs=verified)
    )
    assert "EPCS_SIGNATURE_INVALID" not in codes(context(controlled=True))
