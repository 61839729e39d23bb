"""The prescribed drug itself: NDC format, identification, DEA schedule and daily dose
(prescription-checks.md §4, §5 "Dose range", §6).

Everything but the NDC format needs the drug reference; without one these checks stay silent
rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from eprescribe.drugs import Drug, ndc_format_valid
from eprescribe.drugs.forms import DOSE_FORMS
from eprescribe.drugs.strength import canonical_strength, format_decimal

from .base import (
    SCHEDULE_I,
    SCHEDULE_II,
    SCHEDULE_III,
    SCHEDULE_IV,
    SCHEDULE_NAMES,
    SCHEDULE_V,
    Check,
    CheckContext,
    Finding,
    Severity,
)
from .context import RXNORM_QUALIFIERS
from .quantity import daily
from .sigtext import DailyUse

#: strictest first; a message schedule ranked after the reference's understates it
_SCHEDULE_RANK = {SCHEDULE_I: 1, SCHEDULE_II: 2, SCHEDULE_III: 3, SCHEDULE_IV: 4, SCHEDULE_V: 5}
_NOT_CONTROLLED = 6
#: NCI unit codes a Sig counts one solid dose unit in, by the dose form's kind
TABLET, CAPSULE = "C48542", "C48480"
_UNIT_OF_KIND = {
    "tablet": TABLET,
    "chewable tablet": TABLET,
    "disintegrating tablet": TABLET,
    "sublingual tablet": TABLET,
    "capsule": CAPSULE,
}
_UNIT_NAMES = {TABLET: "tablets", CAPSULE: "capsules"}


def ndc(context: CheckContext) -> Iterator[Finding]:
    code = context.newrx.medication.product_code
    if code is not None and code.qualifier == "ND" and not ndc_format_valid(code.code):
        yield Finding(
            "NDC_INVALID",
            Severity.WARNING,
            "The product code is marked as an NDC but is not a valid NDC (10 digits as "
            "4-4-2, 5-3-2 or 5-4-1, or 11 digits).",
            {"ndc": code.code},
        )


def unknown(context: CheckContext) -> Iterator[Finding]:
    if context.reference is None or context.drug is not None:
        return
    medication = context.newrx.medication
    code = medication.product_code
    db_code = medication.drug_db_code
    yield Finding(
        "DRUG_UNKNOWN",
        Severity.WARNING,
        "The drug reference does not know this drug by its NDC, RxNorm code or description, "
        "so interaction, allergy, duplication and dose checks could not run.",
        {
            "description": medication.drug_description,
            "ndc": code.code if code is not None and code.qualifier == "ND" else None,
            "rxnorm": (
                db_code.code
                if db_code is not None and db_code.qualifier in RXNORM_QUALIFIERS
                else None
            ),
        },
    )


def schedule(context: CheckContext) -> Iterator[Finding]:
    drug = context.drug
    if drug is None:
        return
    sent, expected = context.message_schedule, drug.dea_schedule
    if sent == expected:
        return
    understated = _rank(sent) > _rank(expected)
    sent_label = SCHEDULE_NAMES.get(sent or "", "no schedule")
    expected_label = drug.schedule_label or "not controlled"
    yield Finding(
        "SCHEDULE_MISMATCH",
        # understating lets a controlled drug slip past the stricter legal rules
        Severity.HARD_STOP if understated else Severity.WARNING,
        f"The prescription gives {sent_label} for {drug.name}, which the drug reference "
        f"lists as {expected_label}.",
        {
            "message_schedule": context.newrx.medication.dea_schedule,
            "message_schedule_label": sent_label,
            "reference_schedule": expected,
            "reference_schedule_label": expected_label,
            "drug": drug.name,
        },
    )


def dose(context: CheckContext) -> Iterator[Finding]:
    drug = context.drug
    if drug is None or not drug.max_daily:
        return
    use = daily(context.newrx.medication)
    if use is None or use.unit_code != _dose_unit(drug):
        return
    for ingredient, per_unit in _per_unit(drug).items():
        maximum = drug.max_daily_for(ingredient)
        limit = canonical_strength(maximum.amount, maximum.unit) if maximum else None
        if limit is not None and limit.unit == "MG" and use.quantity * per_unit > limit.value:
            yield _above_maximum(drug, ingredient, use, use.quantity * per_unit, limit.value)


def _above_maximum(
    drug: Drug, ingredient: str, use: DailyUse, amount: Decimal, limit: Decimal
) -> Finding:
    units = f"{format_decimal(use.quantity)} {_UNIT_NAMES[use.unit_code]}"
    return Finding(
        "DOSE_EXCEEDS_MAX",
        Severity.WARNING,
        f"{units} a day of {drug.name} give {format_decimal(amount)} mg of {ingredient} a "
        f"day, above the usual adult maximum of {format_decimal(limit)} mg.",
        {
            "ingredient": ingredient,
            "units_per_day": str(use.quantity),
            "daily_amount": format_decimal(amount),
            "maximum": format_decimal(limit),
            "unit": "MG",
        },
    )


def _rank(schedule: str | None) -> int:
    return _SCHEDULE_RANK.get(schedule or "", _NOT_CONTROLLED)


def _dose_unit(drug: Drug) -> str | None:
    """The NCI unit one dose of the drug is counted in, for solid oral forms; else None."""
    form = DOSE_FORMS.get(drug.dose_form)
    return _UNIT_OF_KIND.get(form.kind) if form is not None else None


def _per_unit(drug: Drug) -> dict[str, Decimal]:
    """Milligrams of each ingredient in one tablet or capsule (salts of one ingredient
    summed); an ingredient whose strength is not a plain mass is left out."""
    amounts: dict[str, Decimal] = {}
    for ingredient in drug.ingredients:
        if ingredient.strength is None or ingredient.unit is None:
            continue
        strength = canonical_strength(ingredient.strength, ingredient.unit)
        if strength is not None and strength.unit == "MG":
            amounts[ingredient.name] = amounts.get(ingredient.name, Decimal(0)) + strength.value
    return amounts


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (ndc, unknown, schedule, dose)
