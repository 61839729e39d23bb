"""Strength units: one canonical form so that 50 mcg, 0.05 MG and 50 ug compare equal.

Canonical numerators are ``MG`` (mass), ``UNT``, ``MEQ``, ``MMOL`` and ``%``; denominators
``ML``, ``G``, ``HR`` and ``ACTUAT``. A denominator with a quantity (FDA ``mg/5mL``, ``mg/24h``,
``g/100g``) is divided out, so ``160 mg/5mL`` becomes ``32 MG/ML`` as RxNorm writes it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final, NamedTuple

__all__ = ["Strength", "canonical_strength", "format_decimal", "parse_decimal", "same_strength"]

# Numerator spellings (RxNorm, FDA UCUM-ish, prescriber free text) -> (canonical, factor).
_NUMERATORS: Final[dict[str, tuple[str, Decimal]]] = {
    **dict.fromkeys(("mg", "mgs", "milligram", "milligrams"), ("MG", Decimal(1))),
    **dict.fromkeys(("mcg", "ug", "µg", "μg", "microgram", "micrograms"), ("MG", Decimal("0.001"))),
    **dict.fromkeys(("g", "gm", "gram", "grams"), ("MG", Decimal(1000))),
    **dict.fromkeys(("kg",), ("MG", Decimal(1000000))),
    **dict.fromkeys(
        ("unt", "unit", "units", "u", "iu", "[iu]", "[usp'u]", "[hp'_x]"), ("UNT", Decimal(1))
    ),
    **dict.fromkeys(("meq", "[meq]"), ("MEQ", Decimal(1))),
    **dict.fromkeys(("mmol",), ("MMOL", Decimal(1))),
    "%": ("%", Decimal(1)),
}
# Denominator spellings -> (canonical, factor to that canonical unit).
_DENOMINATORS: Final[dict[str, tuple[str, Decimal]]] = {
    **dict.fromkeys(("ml", "milliliter", "milliliters"), ("ML", Decimal(1))),
    **dict.fromkeys(("l",), ("ML", Decimal(1000))),
    **dict.fromkeys(("g", "gm", "gram"), ("G", Decimal(1))),
    **dict.fromkeys(("hr", "h", "hour", "hours", "24hr"), ("HR", Decimal(1))),
    **dict.fromkeys(("d", "day"), ("HR", Decimal(24))),
    **dict.fromkeys(
        (
            "actuat",
            "{actuat}",
            "actuation",
            "actuations",
            "puff",
            "puffs",
            "spray",
            "sprays",
            "inhalation",
        ),
        ("ACTUAT", Decimal(1)),
    ),
}


class Strength(NamedTuple):
    value: Decimal
    unit: str


def parse_decimal(text: str) -> Decimal | None:
    """A positive finite decimal, or None."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: 100, 0.025, 37.5."""
    return format(value.normalize(), "f")


def canonical_strength(value: Decimal, unit: str) -> Strength | None:
    """The canonical form of ``value`` ``unit``, or None when the unit is not understood.

    A bare ``/1`` denominator (FDA ``mg/1``: per tablet) is dropped.
    """
    numerator, _, denominator = unit.strip().lower().replace(" ", "").partition("/")
    known = _NUMERATORS.get(numerator)
    if known is None:
        return None
    canon, factor = known
    value = value * factor
    if not denominator or denominator == "1":
        return Strength(value, canon)
    per = _denominator(denominator)
    if per is None:
        return None
    quantity, per_unit = per
    return Strength(value / quantity, f"{canon}/{per_unit}")


def _denominator(text: str) -> tuple[Decimal, str] | None:
    digits = len(text) - len(text.lstrip("0123456789."))
    quantity = parse_decimal(text[:digits]) if digits else Decimal(1)
    known = _DENOMINATORS.get(text[digits:])
    if quantity is None or known is None:
        return None
    unit, factor = known
    return quantity * factor, unit


def same_strength(given: Strength, reference: Strength) -> bool:
    """Equal canonical strengths; a percentage equals the same w/v or w/w in MG/ML or MG/G."""
    if given.unit == "%" and reference.unit in ("MG/ML", "MG/G"):
        return given.value * 10 == reference.value
    return given == reference
