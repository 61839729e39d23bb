"""A patient's profile as the pharmacist reads it (docs/patients.md "Profile: allergies,
conditions, medications, timeline"): coded allergy entries, the conditions the prescriptions'
diagnoses name, and how a search's terms are read. Pure rules: no web, no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from enum import StrEnum

from .ncpdp import Allergy, MedicationPrescribed
from .patients import normalise_name

#: an allergy entry's text, as long as SCRIPT's drug text; a code; a reaction
ALLERGY_TEXT_MAX = 105
ALLERGY_CODE_MAX = 35
REACTION_MAX = 105


class ProfileError(ValueError):
    """An entry or a search the rules refuse; the message says why, in words for the user."""


class CodeSystem(StrEnum):
    """The vocabulary an allergy entry's code is in; ``free_text``: no code."""

    RXNORM = "rxnorm"
    SNOMED = "snomed"
    NDFRT = "ndfrt"
    NDC = "ndc"
    UNII = "unii"
    FREE_TEXT = "free_text"


class Severity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """Where an allergy entry comes from: a prescription's NewRx, or the pharmacy's staff."""

    PRESCRIPTION = "prescription"
    STAFF = "staff"


_NAMES = {
    CodeSystem.RXNORM: "RxNorm",
    CodeSystem.SNOMED: "SNOMED CT",
    CodeSystem.NDFRT: "NDF-RT",
    CodeSystem.NDC: "NDC",
    CodeSystem.UNII: "UNII",
}

#: SCRIPT's DrugProductCoded qualifiers (and their code systems' usual names)
_QUALIFIERS = {
    "rxnorm": CodeSystem.RXNORM,
    "rxn": CodeSystem.RXNORM,
    "sbd": CodeSystem.RXNORM,
    "scd": CodeSystem.RXNORM,
    "gpk": CodeSystem.RXNORM,
    "nd": CodeSystem.NDC,
    "ndc": CodeSystem.NDC,
    "snomed": CodeSystem.SNOMED,
    "ndfrt": CodeSystem.NDFRT,
    "unii": CodeSystem.UNII,
    "ug": CodeSystem.UNII,
}


@dataclasses.dataclass(frozen=True, slots=True)
class AllergyEntry:
    """One allergy as the profile lists it: what (text, and the code in its system), how the
    patient reacted, how badly."""

    text: str
    code_system: CodeSystem
    code: str | None
    reaction: str | None
    severity: Severity | None

    @property
    def key(self) -> tuple[str, str]:
        """Two entries of one allergen are one: the same code, or the same words."""
        if self.code is not None:
            return (self.code_system.value, self.code.casefold())
        return ("text", self.text.casefold())


def _words(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def allergy_entry(
    text: str,
    code_system: str = CodeSystem.FREE_TEXT,
    code: str | None = None,
    reaction: str | None = None,
    severity: str | None = None,
) -> AllergyEntry:
    """An entry a pharmacist or technician types: text always (the checks read the words),
    a code unless free text, nothing blank."""
    words = _words(text)
    if words is None:
        raise ProfileError("The allergy entry is blank.")
    if len(words) > ALLERGY_TEXT_MAX:
        raise ProfileError(f"The allergy entry is at most {ALLERGY_TEXT_MAX} characters.")
    try:
        system = CodeSystem(code_system)
    except ValueError:
        raise ProfileError(
            f"code_system must be one of: {', '.join(c.value for c in CodeSystem)}."
        ) from None
    coded = _words(code)
    if system is CodeSystem.FREE_TEXT and coded is not None:
        raise ProfileError("A free-text entry has no code: name its code system.")
    if system is not CodeSystem.FREE_TEXT and coded is None:
        raise ProfileError(f"An entry coded in {_NAMES[system]} needs its code.")
    if coded is not None and (len(coded) > ALLERGY_CODE_MAX or " " in coded):
        raise ProfileError(f"A code is one word of at most {ALLERGY_CODE_MAX} characters.")
    said = _words(reaction)
    if said is not None and len(said) > REACTION_MAX:
        raise ProfileError(f"The reaction is at most {REACTION_MAX} characters.")
    try:
        graded = Severity(severity) if severity is not None else None
    except ValueError:
        raise ProfileError(
            f"severity must be one of: {', '.join(s.value for s in Severity)}."
        ) from None
    return AllergyEntry(words, system, coded, said, graded)


def from_prescription(allergy: Allergy) -> AllergyEntry | None:
    """A NewRx allergy as a profile entry (None without drug or event text): its code's
    system from the SCRIPT qualifier (free text when unknown), the reaction's words."""
    text = _words(allergy.drug_text) or _words(allergy.adverse_event_text)
    if text is None:
        return None
    code = _words(allergy.drug_code)
    system = _QUALIFIERS.get((allergy.drug_code_qualifier or "").casefold(), CodeSystem.FREE_TEXT)
    if system is CodeSystem.FREE_TEXT:
        code = None
    return AllergyEntry(
        text[:ALLERGY_TEXT_MAX],
        system,
        code,
        _words(allergy.reaction_text) or _words(allergy.reaction_code),
        None,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """A diagnosis a prescription named: its code, code system qualifier, description."""

    code: str
    qualifier: str
    description: str | None


def conditions(medications: Iterable[MedicationPrescribed]) -> list[Condition]:
    """Every diagnosis (primary and secondary) the medications name, once each (by qualifier
    and code, the first description given), in the order met."""
    seen: dict[tuple[str, str], Condition] = {}
    for medication in medications:
        for diagnosis in medication.diagnoses:
            for code in (diagnosis.primary, diagnosis.secondary):
                if code is None:
                    continue
                key = (code.qualifier, code.code.casefold())
                known = seen.get(key)
                if known is None:
                    seen[key] = Condition(code.code, code.qualifier, code.description)
                elif known.description is None and code.description:
                    seen[key] = dataclasses.replace(known, description=code.description)
    return list(seen.values())


@dataclasses.dataclass(frozen=True, slots=True)
class Search:
    """A patient search: a normalised last name (a prefix), first name (a prefix), birth date,
    mobile in E.164. At least one."""

    last: str | None = None
    first: str | None = None
    born: dt.date | None = None
    phone: str | None = None

    @property
    def criteria(self) -> list[str]:
        """Which terms were given (never their values: those are patient data)."""
        named = self.last is not None or self.first is not None
        return [
            c
            for c, given in (("name", named), ("birth_date", self.born), ("phone", self.phone))
            if given
        ]


def search(name: str | None, birth_date: str | None, phone: str | None) -> Search:
    """The terms of a search: ``name`` as "Last", "Last, First" or "First Last"
    (normalised as the match does, each a prefix), ``birth_date`` YYYY-MM-DD, ``phone`` as a
    mobile is stored."""
    from .contacts import ContactError, normalise_mobile

    last = first = None
    if name is not None and name.strip():
        if "," in name:
            last_text, _, first_text = name.partition(",")
        else:
            parts = name.split()
            last_text, first_text = (
                (parts[-1], " ".join(parts[:-1]))
                if len(parts) > 1
                else (
                    name,
                    "",
                )
            )
        last = normalise_name(last_text) or None
        first = normalise_name(first_text) or None
        if last is None and first is None:
            raise ProfileError("The name has no letters to search for.")
    born = None
    if birth_date is not None and birth_date.strip():
        try:
            if len(birth_date.strip()) != 10:
                raise ValueError
            born = dt.date.fromisoformat(birth_date.strip())
        except ValueError:
            raise ProfileError("birth_date must be a date written YYYY-MM-DD.") from None
    mobile = None
    if phone is not None and phone.strip():
        try:
            mobile = normalise_mobile(phone)
        except ContactError as error:
            raise ProfileError(f"phone: {error}.") from None
    found = Search(last, first, born, mobile)
    if not found.criteria:
        raise ProfileError("Search by name, birth_date or phone (at least one).")
    return found
