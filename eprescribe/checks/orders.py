"""The order against the patient's other orders: the same order sent again under another
MessageID (some EHRs resend a prescription as a new message when an acknowledgement is late)."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Check, CheckContext, Finding, Severity


def duplicate_order(context: CheckContext) -> Iterator[Finding]:
    if not context.same_order:
        return
    number = context.prescriber_order_number
    others = sorted(context.same_order)
    yield Finding(
        "DUPLICATE_ORDER",
        Severity.WARNING,
        f"The prescriber's order {number} already arrived for this patient and drug under "
        "another message: the same order sent again?",
        {"prescriber_order_number": number, "other_prescription_ids": others},
    )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (duplicate_order,)
