"""A prescription the automatic checks could not run on (what went wrong is not the
prescription's fault, or not one the checks know): it goes to a pharmacist at once instead of
waiting for checks that would fail again. A hard stop, because nothing was checked: the
pharmacist rejects it or asks the prescriber, never approves it unchecked."""

from __future__ import annotations

from .base import Finding, Severity

CHECKS_FAILED = "CHECKS_FAILED"


def checks_failed(error_type: str) -> Finding:
    """The finding for checks that failed with ``error_type`` (its name only: an error's text
    may quote patient data)."""
    return Finding(
        CHECKS_FAILED,
        Severity.HARD_STOP,
        "The automatic checks could not run on this prescription; check it by hand.",
        {"error": error_type},
    )
