"""Matching a prescription's patient to the pharmacy's profiles (prescription-checks.md §3).

Deterministic and conservative: a profile is reused only when normalised name, date of birth,
gender and ZIP all agree and exactly one profile does; anything less goes to a pharmacist.
Profiles are never merged automatically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from eprescribe.checks import PatientMatch
from eprescribe.ncpdp import Patient

#: the longest key :func:`normalise_name` gives (the width of the profile's key columns): a
#: name of 35 characters may decompose to many more letters (㎯ is four)
NAME_KEY_MAX: Final = 100
#: the part of a postal code that is matched (the five-digit ZIP code)
ZIP_LENGTH: Final = 5

_NOT_LETTERS = re.compile(r"[^a-z]")
_SUFFIXES = re.compile(r"\b(jr|sr|ii|iii|iv)\b\.?")


def normalise_name(name: str) -> str:
    """Case, accents, punctuation, spaces and generational suffixes ignored; at most
    :data:`NAME_KEY_MAX` characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _bounded(_NOT_LETTERS.sub("", _SUFFIXES.sub("", ascii_name.casefold())))


def same_person(a: Patient, b: Patient) -> bool:
    """Whether two messages' patients are the same person as far as a message says: the same
    kind, normalised last and first name, and date of birth (each compared when both have
    it). For a prescriber's answer, which must be about the patient it was asked about."""
    if a.kind != b.kind:
        return False
    x, y = a.name, b.name
    if x is not None and y is not None:
        if normalise_name(x.last) != normalise_name(y.last):
            return False
        if normalise_name(x.first or "") != normalise_name(y.first or ""):
            return False
    born_a, born_b = a.date_of_birth, b.date_of_birth
    return born_a is None or born_b is None or born_a.date == born_b.date


def _bounded(letters: str) -> str:
    """``letters`` if they fit, else their beginning, ``-`` and the SHA-256 of all of them.

    Cutting a long key would make names that differ only after the cut match; the digest
    keeps them apart, and the ``-`` (never in a key of letters) keeps such a key from ever
    equalling a short one. Short keys stay as they were, so stored profiles still match.
    """
    if len(letters) <= NAME_KEY_MAX:
        return letters
    digest = hashlib.sha256(letters.encode()).hexdigest()
    return f"{letters[: NAME_KEY_MAX - len(digest) - 1]}-{digest}"


@dataclass(frozen=True, slots=True)
class MatchKey:
    last: str
    first: str
    date_of_birth: dt.date
    gender: str
    postal_code: str  # first ZIP_LENGTH characters

    @classmethod
    def of(cls, patient: Patient) -> MatchKey | None:
        """The key, or None when the message lacks what matching needs (non-human patients)."""
        name, born, address = patient.name, patient.date_of_birth, patient.address
        if name is None or born is None or address is None or patient.gender is None:
            return None
        if address.postal_code is None:  # a NonHumanPatient's address may lack it
            return None
        return cls(
            last=normalise_name(name.last),
            first=normalise_name(name.first or ""),
            date_of_birth=born.date,
            gender=patient.gender,
            postal_code=address.postal_code.strip()[:ZIP_LENGTH],
        )


def classify(key: MatchKey, candidates: Iterable[tuple[str, MatchKey]]) -> PatientMatch:
    """``candidates`` are the pharmacy's profiles sharing last name, first name and birth date."""
    same_person = [
        (pid, c)
        for pid, c in candidates
        if (c.last, c.first, c.date_of_birth) == (key.last, key.first, key.date_of_birth)
    ]
    # one profile may stand for several keys (a merged profile's key is its survivor's too)
    exact = list(
        dict.fromkeys(
            pid
            for pid, c in same_person
            if (c.gender, c.postal_code) == (key.gender, key.postal_code)
        )
    )
    if len(exact) == 1:
        return PatientMatch("exact", (exact[0],))
    if len(exact) > 1:
        return PatientMatch("ambiguous", tuple(exact))
    if not same_person:
        return PatientMatch("new")
    differences = sorted({field for _, c in same_person for field in _differences(key, c)})
    weak = tuple(dict.fromkeys(pid for pid, _ in same_person))
    return PatientMatch("weak", weak, tuple(differences))


def _differences(key: MatchKey, other: MatchKey) -> Iterable[str]:
    if key.gender != other.gender:
        yield "gender"
    if key.postal_code != other.postal_code:
        yield "postal_code"


#: the fields a match compares, in the order the console shows them
MATCH_FIELDS: Final = ("last_name", "first_name", "date_of_birth", "gender", "postal_code")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Why a profile is a candidate for a prescription's patient: the fields that agree and
    those that differ (of :data:`MATCH_FIELDS`, normalised as matching compares them)."""

    agree: tuple[str, ...]
    differ: tuple[str, ...]


def compare(key: MatchKey, other: MatchKey) -> Comparison:
    """How ``other`` (a profile's key) compares with ``key`` (a prescription's patient)."""
    pairs = (
        ("last_name", key.last, other.last),
        ("first_name", key.first, other.first),
        ("date_of_birth", key.date_of_birth, other.date_of_birth),
        ("gender", key.gender, other.gender),
        ("postal_code", key.postal_code, other.postal_code),
    )
    return Comparison(
        tuple(name for name, a, b in pairs if a == b),
        tuple(name for name, a, b in pairs if a != b),
    )


# -- merging two profiles (never automatic: a pharmacist asks) ------------------------------


@dataclass(frozen=True, slots=True)
class ContactPoint:
    """A contact point as a merge sees it: its ID, channel kind and normalised address."""

    id: str
    kind: str
    value: str


def contacts_to_move(
    survivor: Iterable[ContactPoint], merged: Iterable[ContactPoint]
) -> tuple[list[str], list[str]]:
    """Which of the merged profile's contact points move to the survivor, and which stay
    with the merged profile (kept for an unmerge): an address the survivor already has stays
    (a profile has each address once); the others move. IDs in the order given."""
    held = {(c.kind, c.value) for c in survivor}
    moving: list[str] = []
    staying: list[str] = []
    for c in merged:
        (staying if (c.kind, c.value) in held else moving).append(c.id)
        held.add((c.kind, c.value))
    return moving, staying


def preferences_move(survivor_has: bool, merged_has: bool) -> bool:
    """Whether the merged profile's preferences (one row a profile) move to the survivor:
    only when the survivor has none. Otherwise the survivor's are kept and the merged's stay
    with the merged profile, for an unmerge."""
    return merged_has and not survivor_has


def merge_refusal(
    survivor_id: str,
    merged_id: str,
    survivor_merged_into: str | None,
    merged_merged_into: str | None,
) -> tuple[str, str] | None:
    """Why two profiles cannot be merged (a code and a sentence), or None when they can."""
    if survivor_id == merged_id:
        return "merge_self", "A profile cannot be merged into itself."
    if merged_merged_into is not None:
        return "already_merged", "That profile was already merged into another."
    if survivor_merged_into is not None:
        return (
            "survivor_merged",
            "The profile to keep was itself merged into another: merge into that one.",
        )
    return None
