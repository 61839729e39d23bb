"""Controlled-substance rules: EPCS signature and federal refill limits (21 CFR 1306, 1311)."""

from __future__ import annotations

from collections.abc import Iterator

from .base import (
    SCHEDULE_II,
    SCHEDULE_III,
    SCHEDULE_IV,
    SCHEDULE_NAMES,
    Check,
    CheckContext,
    Finding,
    Severity,
)

MAX_REFILLS_III_IV = 5


def signature(context: CheckContext) -> Iterator[Finding]:
    if not context.controlled:
        return
    sig = context.signature
    signed = sig is not None and (bool(sig.indicator) or bool(sig.signature_value))
    if not signed:
        yield Finding(
            "EPCS_SIGNATURE_MISSING",
            Severity.HARD_STOP,
            "A controlled-substance prescription arrived without a digital signature or "
            "signature indicator (21 CFR 1311).",
            {
                "schedule": SCHEDULE_NAMES[context.schedule or ""],
                "digital_signature": "absent" if sig is None else "indicator false",
            },
        )


def refills(context: CheckContext) -> Iterator[Finding]:
    count = context.newrx.medication.number_of_refills
    if context.schedule == SCHEDULE_II and count > 0:
        yield Finding(
            "REFILLS_NOT_ALLOWED",
            Severity.HARD_STOP,
            f"Schedule II prescriptions cannot be refilled (21 CFR 1306.12); {count} "
            "refills were written.",
            {"schedule": "C-II", "refills": count},
        )
    elif context.schedule in (SCHEDULE_III, SCHEDULE_IV) and count > MAX_REFILLS_III_IV:
        yield Finding(
            "REFILLS_EXCEED_LIMIT",
            Severity.HARD_STOP,
            f"Schedule III and IV prescriptions allow at most {MAX_REFILLS_III_IV} refills "
            f"(21 CFR 1306.22); {count} were written.",
            {
                "schedule": SCHEDULE_NAMES[context.schedule or ""],
                "refills": count,
                "limit": MAX_REFILLS_III_IV,
            },
        )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (signature, refills)
