"""The order against the patient's other orders: the same order sent again under another
MessageID (some EHRs resend a prescription as a new message when an acknowledgement is late),
and a picture too large to compare with in full."""

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


def picture_incomplete(context: CheckContext) -> Iterator[Finding]:
    """More pending prescriptions than the checks compare against: say so rather than let a
    pharmacist take silence for a clean picture."""
    if not context.pending_omitted:
        return
    compared = sum(1 for other in context.active if other.pending_since is not None)
    yield Finding(
        "PICTURE_INCOMPLETE",
        Severity.WARNING,
        f"The patient has {compared + context.pending_omitted} open prescriptions; this one "
        f"was compared with the latest {compared} only. Review the patient's profile.",
        {"pending_compared": compared, "pending_omitted": context.pending_omitted},
    )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (duplicate_order, picture_incomplete)
