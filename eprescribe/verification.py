"""Pharmacist verification rules: claims, approval with overrides, rejection, clarification.

A pharmacist *claims* a prescription before acting on it: the claim is a lock with an expiry,
visible to colleagues, so two pharmacists never verify the same order at once; an expired
claim may be taken over. *Approval* is refused while any hard stop stands, and every warning
needs its own override reason. Rejections and clarification requests carry a reason code from
a fixed list and a text for the prescriber. Storage and transport are not this module's
business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CLAIM_TTL = dt.timedelta(minutes=15)
REASON_MAX = 500

#: why a prescription is rejected (sent to the prescriber with the text)
REJECT_REASONS = frozenset(
    {
        "prescriber_not_verified",
        "patient_not_verified",
        "drug_interaction",
        "allergy",
        "dose",
        "therapeutic_duplication",
        "controlled_substance_rules",
        "expired",
        "not_clinically_appropriate",
        "other",
    }
)
#: what the prescriber is asked to clarify
CLARIFY_REASONS = frozenset(
    {"drug", "strength", "dose", "quantity", "directions", "patient", "prescriber", "other"}
)


class VerificationError(ValueError):
    """A verification step the rules refuse; ``code`` is stable, ``codes`` the findings."""

    def __init__(self, code: str, detail: str, codes: Iterable[str] = ()) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.codes = tuple(codes)


@dataclass(frozen=True, slots=True)
class Claim:
    holder: str  # the claiming user's ID
    until: dt.datetime

    def active(self, now: dt.datetime) -> bool:
        return self.until > now


class ClaimHeld(VerificationError):
    def __init__(self, claim: Claim) -> None:
        super().__init__(
            "claimed_by_other", f"Another pharmacist holds this prescription until {claim.until}."
        )
        self.claim = claim


def take_claim(current: Claim | None, user: str, now: dt.datetime) -> Claim:
    """A new or renewed claim for ``user``; raises :class:`ClaimHeld` if a colleague holds it."""
    if current is not None and current.holder != user and current.active(now):
        raise ClaimHeld(current)
    return Claim(user, now + CLAIM_TTL)


def require_claim(current: Claim | None, user: str, now: dt.datetime) -> None:
    """Acting needs the caller's own, unexpired claim."""
    if current is None or current.holder != user or not current.active(now):
        if current is not None and current.active(now):
            raise ClaimHeld(current)
        raise VerificationError("claim_required", "Claim the prescription first.")


def reason_text(text: object) -> str:
    """A free-text reason: a string of 1 to 500 printable characters (newlines allowed)."""
    if not isinstance(text, str) or not text.strip():
        raise VerificationError("reason_required", "A reason text is required.")
    cleaned = text.strip()
    if len(cleaned) > REASON_MAX:
        raise VerificationError("reason_too_long", f"Reasons are at most {REASON_MAX} characters.")
    if any(not (ch.isprintable() or ch in "\n\t") for ch in cleaned):
        raise VerificationError("reason_invalid", "Reasons must be printable text.")
    return cleaned


def reason_code(code: object, allowed: frozenset[str]) -> str:
    if not isinstance(code, str) or code not in allowed:
        raise VerificationError(
            "reason_code_invalid", f"reason_code must be one of: {', '.join(sorted(allowed))}."
        )
    return code


def approval_overrides(
    findings: Iterable[tuple[str, str]], overrides: Mapping[str, object]
) -> dict[str, str]:
    """The override reason for each warning, checked: ``findings`` are (code, severity).

    Refused while a hard stop stands; every warning needs a reason; an override for a code
    that is not a warning of this prescription is a mistake, not something to ignore.
    """
    findings = list(findings)
    hard = sorted({code for code, severity in findings if severity == "hard_stop"})
    if hard:
        raise VerificationError(
            "hard_stops", "Hard stops block approval: reject or ask for clarification.", hard
        )
    warnings = sorted({code for code, severity in findings if severity == "warning"})
    stray = sorted(set(overrides) - set(warnings))
    if stray:
        raise VerificationError(
            "unknown_overrides", "Overrides name codes that are not warnings here.", stray
        )
    missing = [code for code in warnings if not _given(overrides.get(code))]
    if missing:
        raise VerificationError(
            "override_reasons_missing", "Each warning needs an override reason.", missing
        )
    return {code: reason_text(overrides[code]) for code in warnings}


def _given(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
