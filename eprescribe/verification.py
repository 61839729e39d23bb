"""Pharmacist verification rules: claims, approval with overrides, rejection, what is asked of
the prescriber (clarification and the other change requests).

A pharmacist *claims* a prescription before acting on it: the claim is a lock with an expiry,
visible to colleagues, so two pharmacists never verify the same order at once; an expired
claim may be taken over. *Approval* is refused while any hard stop stands, and every warning
needs its own override reason. Rejections and clarification requests carry a reason code from
a fixed list and a text for the prescriber. Storage and transport are not this module's
business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from .drugs import DrugReference
from .ncpdp.outbound import PRESCRIBER_AUTHORIZATION_SUBCODES, ChangeRequestCode

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


# -- what a pharmacist asks the prescriber (an RxChangeRequest) -------------------------------

#: the kinds of change request, by their SCRIPT ``MessageRequestCode`` (the values and what is
#: unconfirmed about them: :mod:`eprescribe.ncpdp.outbound.rxchangerequest`), in words
CHANGE_KINDS: Final = {
    ChangeRequestCode.GENERIC_SUBSTITUTION: "generic substitution",
    ChangeRequestCode.THERAPEUTIC_INTERCHANGE: "therapeutic interchange",
    ChangeRequestCode.PRIOR_AUTHORIZATION: "prior authorization",
    ChangeRequestCode.SCRIPT_CLARIFICATION: "script clarification",
    ChangeRequestCode.DRUG_USE_EVALUATION: "drug use evaluation",
    ChangeRequestCode.OUT_OF_STOCK: "out of stock",
    ChangeRequestCode.PRESCRIBER_AUTHORIZATION: "prescriber authorization",
}
#: kinds that propose another product: at least one medication, at most MEDICATIONS_MAX
PROPOSES_PRODUCT: Final = frozenset(
    {ChangeRequestCode.GENERIC_SUBSTITUTION, ChangeRequestCode.THERAPEUTIC_INTERCHANGE}
)
#: kinds that may propose alternatives (none needed): out of stock, drug use evaluation
MAY_PROPOSE: Final = frozenset(
    {ChangeRequestCode.OUT_OF_STOCK, ChangeRequestCode.DRUG_USE_EVALUATION}
)
#: the most medications one request proposes (the hub's own bound: a prescriber chooses one)
MEDICATIONS_MAX: Final = 3
#: what a prescriber authorization request asks the prescriber to confirm, by
#: ``MessageRequestSubCode`` (public values, unverified; see the outbound module)
AUTHORIZATION_SUBJECTS: Final = {
    "A": "state license",
    "B": "DEA registration",
    "C": "DEA class",
    "D": "state controlled substance registration",
    "E": "state controlled substance class",
    "F": "DATA 2000 waiver",
    "G": "NPI",
    "H": "benefit plan enrollment",
    "I": "specialty",
    "J": "supervising prescriber",
    "K": "certificate to prescribe",
    "L": "REMS enrollment",
    "M": "Medicaid enrollment",
}
assert frozenset(AUTHORIZATION_SUBJECTS) == PRESCRIBER_AUTHORIZATION_SUBCODES
#: NCI units a proposed quantity may be counted in
QUANTITY_UNITS: Final = {
    "C48542": "tablet",
    "C48480": "capsule",
    "C28254": "milliliter",
    "C48155": "gram",
    "C64933": "each",
    "C48524": "patch",
}
SIG_MAX: Final = 1000
QUANTITY_MAX = Decimal("99999")
DAYS_SUPPLY_MAX: Final = 999
REFILLS_MAX: Final = 99


@dataclass(frozen=True, slots=True)
class MedicationDraft:
    """A medication as the pharmacist proposes it, before the rules looked at it."""

    drug: object
    quantity: object
    quantity_unit: object
    sig: object
    days_supply: object = None
    refills: object = None


@dataclass(frozen=True, slots=True)
class ProposedMedication:
    """A checked proposal: a drug the reference knows, a positive quantity in a known unit,
    directions; ``rxcui`` and ``dea_schedule`` are the reference's (``None`` when unknown)."""

    drug_description: str
    quantity: Decimal
    quantity_unit: str
    sig: str
    days_supply: int | None = None
    refills: int | None = None
    rxcui: str | None = None
    dea_schedule: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeQuestion:
    """What the pharmacist asks, checked: the kind, the reason code (script clarification's
    own list; optional for the other kinds), the text for the prescriber, the sub-codes of a
    prescriber authorization and the medications proposed."""

    kind: ChangeRequestCode
    reason_code: str
    text: str
    sub_codes: tuple[str, ...] = ()
    medications: tuple[ProposedMedication, ...] = ()

    @property
    def label(self) -> str:
        return CHANGE_KINDS[self.kind]


def change_question(
    kind: object,
    reason: object,
    text: object,
    sub_codes: Sequence[object],
    medications: Sequence[MedicationDraft],
    drugs: DrugReference,
) -> ChangeQuestion:
    """The pharmacist's request checked against the rules, or :class:`VerificationError`.

    Script clarification (S) needs a reason code from :data:`CLARIFY_REASONS`; every kind needs
    a text; a prescriber authorization (U) names what to confirm (its sub-codes) and no other
    kind does; generic substitution and therapeutic interchange (G, T) propose 1 to
    :data:`MEDICATIONS_MAX` medications, out of stock and drug use evaluation (OS, D) may,
    the others may not (they repeat the prescription as written). Each proposed drug must be
    one the drug reference knows (by name or description).
    """
    if not isinstance(kind, str) or kind not in CHANGE_KINDS:
        raise VerificationError(
            "request_code_invalid",
            f"request_code must be one of: {', '.join(sorted(CHANGE_KINDS))}.",
        )
    code = ChangeRequestCode(kind)
    if code is ChangeRequestCode.SCRIPT_CLARIFICATION or reason is not None:
        reason = reason_code(reason, CLARIFY_REASONS)
    why = reason_text(text)
    return ChangeQuestion(
        kind=code,
        reason_code=str(reason) if reason is not None else "other",
        text=why,
        sub_codes=_sub_codes(code, sub_codes),
        medications=_medications(code, medications, drugs),
    )


def _sub_codes(code: ChangeRequestCode, sub_codes: Sequence[object]) -> tuple[str, ...]:
    if code is not ChangeRequestCode.PRESCRIBER_AUTHORIZATION:
        if sub_codes:
            raise VerificationError(
                "sub_codes_not_allowed", "Only a prescriber authorization request has sub-codes."
            )
        return ()
    if not sub_codes:
        raise VerificationError(
            "sub_codes_required",
            "Say what the prescriber must confirm (at least one sub-code).",
        )
    unknown = sorted({str(s) for s in sub_codes} - AUTHORIZATION_SUBJECTS.keys())
    if unknown:
        raise VerificationError(
            "sub_codes_invalid",
            f"sub_codes must be among: {', '.join(sorted(AUTHORIZATION_SUBJECTS))}.",
            unknown,
        )
    return tuple(sorted({str(s) for s in sub_codes}))


def _medications(
    code: ChangeRequestCode, drafts: Sequence[MedicationDraft], drugs: DrugReference
) -> tuple[ProposedMedication, ...]:
    if code in PROPOSES_PRODUCT and not drafts:
        raise VerificationError(
            "medications_required", f"A {CHANGE_KINDS[code]} request proposes a medication."
        )
    if drafts and code not in PROPOSES_PRODUCT | MAY_PROPOSE:
        raise VerificationError(
            "medications_not_allowed",
            f"A {CHANGE_KINDS[code]} request proposes no medication: it asks about the "
            "prescription as written.",
        )
    if len(drafts) > MEDICATIONS_MAX:
        raise VerificationError(
            "medications_too_many", f"Propose at most {MEDICATIONS_MAX} medications."
        )
    return tuple(_medication(draft, drugs) for draft in drafts)


def _medication(draft: MedicationDraft, drugs: DrugReference) -> ProposedMedication:
    name = draft.drug.strip() if isinstance(draft.drug, str) else ""
    drug = (drugs.by_name(name) or drugs.by_description(name)) if name else None
    if drug is None:
        raise VerificationError(
            "drug_unknown",
            "The drug reference does not know that drug: choose one it lists.",
            [name[:105]] if name else [],
        )
    if draft.quantity_unit not in QUANTITY_UNITS:
        raise VerificationError(
            "quantity_unit_invalid",
            f"quantity_unit must be one of: {', '.join(sorted(QUANTITY_UNITS))}.",
        )
    return ProposedMedication(
        drug_description=drug.name,
        quantity=_quantity(draft.quantity),
        quantity_unit=str(draft.quantity_unit),
        sig=_sig(draft.sig),
        days_supply=_count(draft.days_supply, "days_supply", 1, DAYS_SUPPLY_MAX),
        refills=_count(draft.refills, "refills", 0, REFILLS_MAX),
        rxcui=drug.rxcui,
        dea_schedule=drug.dea_schedule,
    )


def _quantity(value: object) -> Decimal:
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) else None
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite() or not 0 < amount <= QUANTITY_MAX:
        raise VerificationError(
            "quantity_invalid", f"The quantity must be a number above 0 and at most {QUANTITY_MAX}."
        )
    if amount.as_tuple().exponent < -3:  # type: ignore[operator]
        raise VerificationError("quantity_invalid", "The quantity has at most 3 decimals.")
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


def _sig(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise VerificationError("sig_required", "Each proposed medication needs directions.")
    if len(value.strip()) > SIG_MAX:
        raise VerificationError("sig_too_long", f"Directions are at most {SIG_MAX} characters.")
    return " ".join(value.split())


def _count(value: object, name: str, least: int, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise VerificationError(f"{name}_invalid", f"{name} must be from {least} to {most}.")
    return value
