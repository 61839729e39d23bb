"""A practitioner's digital signature that arrived and failed verification (21 CFR 1311.210(b)):
``EPCS_SIGNATURE_INVALID``, a hard stop. The verification itself ran before the checks
(:mod:`eprescribe.epcs`; it may fetch a CRL); this turns what it found into the finding. A
controlled substance without any signature is ``EPCS_SIGNATURE_MISSING`` (:mod:`.controlled`)."""

from __future__ import annotations

from collections.abc import Iterator

from eprescribe.epcs import Outcome

from .base import SCHEDULE_NAMES, Check, CheckContext, Finding, Severity

_WHY = {
    Outcome.MALFORMED: "its parts cannot be read",
    Outcome.DIGEST_MISMATCH: "the prescription was altered after it was signed",
    Outcome.BAD_SIGNATURE: "it was not made with the key of the certificate sent",
    Outcome.UNTRUSTED_CHAIN: "its certificate does not chain to a trusted root",
    Outcome.EXPIRED: "its certificate was not valid when the prescription arrived",
    Outcome.REVOKED: "its certificate is revoked",
    Outcome.CRL_UNAVAILABLE: "the certificate's revocation list could not be obtained",
}


def signature_verified(context: CheckContext) -> Iterator[Finding]:
    found = context.epcs
    if found is None or found.verified:
        return
    schedule = SCHEDULE_NAMES.get(context.schedule or "")
    yield Finding(
        "EPCS_SIGNATURE_INVALID",
        Severity.HARD_STOP,
        f"The prescriber's digital signature failed verification: {_WHY[found.outcome]}. "
        "Do not dispense until the prescriber confirms the prescription (21 CFR 1311.210).",
        {
            **({"schedule": schedule} if schedule else {}),
            "failure": found.outcome.value,
            "reason": found.reason,
            **found.evidence,
        },
    )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (signature_verified,)
