"""Reading drug names: the RxNorm clinical drug name shape, and free-text descriptions.

RxNorm SCD names read ``[<n> HR ]<ingredient> <strength> <UNIT>[ / <ingredient> <strength>
<UNIT> ...] <Dose Form>``, e.g. ``24 HR metformin hydrochloride 500 MG Extended Release Oral
Tablet``. Free text is anything a prescriber's system sends: ``Sertraline HCl 50mg tab``,
``hydrocodone-APAP 5-325 mg``, ``50 mg sertraline tablets``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final, NamedTuple

from eprescribe.drugs.errors import DrugDataError
from eprescribe.drugs.forms import DOSE_FORMS
from eprescribe.drugs.strength import Strength, canonical_strength, parse_decimal

__all__ = [
    "SALT_WORDS",
    "ParsedName",
    "ParsedPart",
    "parse_drug_name",
    "strip_salts",
    "text_strengths",
    "words",
]

# Words naming the salt, ester or hydrate of an active moiety.
_SALTS = """
    hydrochloride hcl dihydrochloride hydrobromide hbr sodium disodium potassium calcium
    magnesium besylate besilate maleate tartrate bitartrate succinate mesylate dimesylate
    sulfate phosphate citrate fumarate acetate bromide chloride hyclate monohydrate dihydrate
    trihydrate anhydrous propionate dipropionate furoate valerate acetonide cypionate enanthate
    axetil proxetil medoxomil cilexetil etexilate saccharate aspartate oxalate pamoate
    tromethamine xinafoate decanoate napsylate carbonate salt base
"""
#: Salt, ester and hydrate words; ignored when matching names.
SALT_WORDS: Final = frozenset(_SALTS.split())

_PREFIX = re.compile(r"(\d+) HR ")
_PART = re.compile(r"(?P<name>.+?) (?P<value>\d*\.?\d+) (?P<unit>[A-Z%]+(?:/[A-Z]+)?)")
# Longest first, so "Extended Release Oral Tablet" is not read as "... Oral Tablet".
_FORMS_BY_LENGTH: Final = sorted(DOSE_FORMS, key=len, reverse=True)
_WORD = re.compile(r"[a-zµμ]+")
_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_STRENGTH = re.compile(
    rf"(?P<values>{_NUMBER}(?:\s*[/-]\s*{_NUMBER})*)\s*"
    r"(?P<unit>mg|mgs|milligrams?|mcg|ug|µg|μg|micrograms?|gm|grams?|g|meq|units?|unt|iu|%)"
    r"(?![a-z])"
    rf"(?:\s*(?:/|per)\s*(?P<per>{_NUMBER})?\s*"
    r"(?P<den>ml|milliliters?|actuat|actuations?|puffs?|sprays?|hr|hours?|h|g|day)(?![a-z]))?"
)
_VALUE_SPLIT = re.compile(r"\s*[/-]\s*")


class ParsedPart(NamedTuple):
    """One ``<ingredient> <strength> <UNIT>`` part of an RxNorm name."""

    name: str
    strength: Decimal
    unit: str


class ParsedName(NamedTuple):
    parts: tuple[ParsedPart, ...]
    dose_form: str
    hours: int | None


def parse_drug_name(name: str) -> ParsedName:
    """Split an RxNorm-shaped clinical drug name; DrugDataError when it is not one."""
    hours = None
    body = name
    prefix = _PREFIX.match(body)
    if prefix:
        hours = int(prefix.group(1))
        body = body[prefix.end() :]
    form = next((f for f in _FORMS_BY_LENGTH if body.endswith(" " + f)), None)
    if form is None:
        raise DrugDataError(f"no known dose form at the end of {name!r}")
    parts = tuple(_part(text, name) for text in body[: -len(form) - 1].split(" / "))
    return ParsedName(parts, form, hours)


def _part(text: str, name: str) -> ParsedPart:
    match = _PART.fullmatch(text)
    strength = parse_decimal(match.group("value")) if match else None
    if match is None or strength is None:
        raise DrugDataError(f"{text!r} in {name!r} is not '<ingredient> <strength> <UNIT>'")
    return ParsedPart(match.group("name"), strength, match.group("unit"))


def words(text: str) -> list[str]:
    """Lowercase alphabetic tokens (digits, hyphens and punctuation separate them)."""
    return _WORD.findall(text.lower())


def strip_salts(name: str) -> str:
    """``metformin hydrochloride`` -> ``metformin``; the name itself when nothing is left."""
    kept = [word for word in name.lower().split() if word not in SALT_WORDS]
    return " ".join(kept) if kept else name.lower()


def text_strengths(text: str) -> list[Strength]:
    """Every strength written in free text, in order, canonical.

    ``5/325 mg`` and ``5-325 mg`` give two strengths with the same unit; ``5 mg/5 mL`` gives
    1 MG/ML; ``6 mg/24 hr`` gives 0.25 MG/HR.
    """
    found: list[Strength] = []
    for match in _STRENGTH.finditer(text.lower()):
        unit = match.group("unit")
        if match.group("den"):
            unit = f"{unit}/{match.group('per') or ''}{match.group('den')}"
        for value_text in _VALUE_SPLIT.split(match.group("values")):
            value = parse_decimal(value_text)
            strength = None if value is None else canonical_strength(value, unit)
            if strength is not None:
                found.append(strength)
    return found
