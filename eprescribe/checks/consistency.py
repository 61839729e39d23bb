"""The prescription against itself: description, coded strength, dose form, quantity unit and
directions must describe the same product (issue 14: EHR samples carried a capsule product
whose Sig named another drug, quantities in milligrams for capsules, and coded strengths that
differed from the description's).

Each contradiction is its own ``PRESCRIPTION_INCONSISTENT`` finding whose evidence names it
(``contradiction``) and both sides. Only certain contradictions count: when a part is missing,
unparseable or could be read two ways, the check says nothing. The product's dose form is the
identified drug's (what is dispensed); without one, a description that plainly says tablet or
capsule.

The directions name another drug only in a dosing phrase ("take 1 capsule of ibuprofen"),
never in advice ("do not take ibuprofen", "take with aspirin", "may take acetaminophen"), and
only through a whole ingredient name or synonym of five letters or more that the drug
reference knows. Brand names are unknown to the reference, so they never count; nor does a
name related to the prescribed drug's ingredients (a shared word, or one inside the other:
escitalopram and citalopram).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from eprescribe.drugs import DrugReference
from eprescribe.drugs.forms import DOSE_FORMS, description_form
from eprescribe.drugs.matching import PhraseScanner, ingredient_phrases
from eprescribe.drugs.names import text_strengths, words
from eprescribe.drugs.strength import (
    Strength,
    canonical_strength,
    format_decimal,
    parse_decimal,
    same_strength,
)

from .base import Check, CheckContext, Finding, Severity

CODE = "PRESCRIPTION_INCONSISTENT"

#: NCI codes of quantity units that weigh or measure rather than count, with their names
#: (reference/ncpdp-script.md lists the common ones; the others are NCI Thesaurus units)
MEASURED_UNITS: Final[Mapping[str, str]] = {
    "C28253": "milligrams",
    "C48152": "micrograms",
    "C48155": "grams",
    "C28252": "kilograms",
    "C28254": "milliliters",
    "C48505": "liters",
}
#: NCI codes of quantity units that count one dose form
COUNTED_UNITS: Final[Mapping[str, str]] = {
    "C48542": "tablet",
    "C48480": "capsule",
    "C48524": "patch",
}
#: NCI codes of ``Strength/StrengthForm`` (FDA SPL dosage forms) by what the form is counted
#: in; forms of other kinds, and tablets made to be dissolved, are not compared
CODED_FORMS: Final[Mapping[str, str]] = {
    **dict.fromkeys(
        (
            *("C42998", "C42893", "C42897", "C42905", "C42910", "C42927", "C42930", "C42931"),
            *("C42963", "C42964", "C42985", "C42992", "C42997", "C42999", "C60997", "C61006"),
            "C124794",
        ),
        "tablet",
    ),
    **dict.fromkeys(
        (
            *("C25158", "C42895", "C42896", "C42902", "C42904", "C42916", "C42917", "C42928"),
            *("C42936", "C42954"),
        ),
        "capsule",
    ),
    **dict.fromkeys(("C42968", "C42923"), "patch"),
    **dict.fromkeys(("C42993", "C42924"), "suppository"),
    **dict.fromkeys(("C42932", "C42920", "C42984"), "film"),
}
#: NCI codes of ``Strength/StrengthUnitOfMeasure``, spelled for ``canonical_strength``
STRENGTH_UNITS: Final[Mapping[str, str]] = {
    "C28253": "mg",
    "C48152": "mcg",
    "C48155": "g",
    "C44278": "unit",
}
#: dose form kinds (forms.py) by what one counts them in: every tablet is a tablet
_COUNTED_AS: Final = {
    "tablet": "tablet",
    "chewable tablet": "tablet",
    "disintegrating tablet": "tablet",
    "sublingual tablet": "tablet",
    "capsule": "capsule",
    "patch": "patch",
    "film": "film",
    "suppository": "suppository",
}
_COUNTED_FORMS: Final = frozenset(_COUNTED_AS.values())
_PLURAL: Final = {"patch": "patches"}
#: shorter names are too often abbreviations or parts of other words ("asa", "tmp")
_SHORTEST_NAME: Final = 5
# "take 1 capsule of", "take 1-2 tabs", "use 2 puffs of", "take": what may stand between a
# dosing verb and the name of what is taken
_AMOUNT = r"(?:\d+(?:\.\d+)?|(?:one|two|three|four|half|a|an)\b)"
_DOSE_LEAD: Final = re.compile(
    r"\b(?:take|give|chew|swallow|use|inhale|apply|inject|instill|insert|administer)\s+"
    rf"(?:{_AMOUNT}(?:\s*(?:-|to|or)\s*{_AMOUNT})?\s*)?"
    r"(?:(?:tablets?|tabs?|capsules?|caps?|pills?|mg|mcg|g|ml|units?|puffs?|drops?|sprays?"
    r"|patch(?:es)?|teaspoons?|tsp|tablespoons?|doses?)\b\s*)?"
    r"(?:of\s+)?(?:the\s+|your\s+)?"
)
_CLAUSE_END: Final = re.compile(r"[.;,:!?()\n]")
# Words before the dosing verb in its clause that make the phrase advice about another drug
# ("do not take", "if needed take", "may take", "stop ... and take") rather than the dose
_NOT_THE_DOSE: Final = frozenset(
    {
        *("not", "no", "never", "don", "dont", "stop", "avoid", "hold", "discontinue"),
        *("instead", "unless", "if", "may", "can", "also", "continue", "or", "and", "than"),
        *("before", "after", "prior", "until", "while", "when", "with", "without"),
    }
)


def inconsistent(context: CheckContext) -> Iterator[Finding]:
    medication = context.newrx.medication
    description = medication.drug_description
    form = _product_form(context)
    yield from _other_drug_in_sig(context)
    if form is not None:
        finding = _quantity_unit(description, form, medication.quantity.unit_code)
        if finding is not None:
            yield finding
    coded = medication.strength
    if coded is not None:
        strength = _coded_strength(coded.value, coded.unit_code)
        if strength is not None:
            yield from _strength(description, strength, coded.value, coded.unit_code)
        coded_form = CODED_FORMS.get(coded.form_code or "")
        if form is not None and coded_form is not None and coded_form != form:
            yield _coded_form(description, form, coded.form_code or "", coded_form)


def _product_form(context: CheckContext) -> str | None:
    """What the product is counted in ("tablet", "capsule", ...) or its dose form kind: the
    identified drug's, else a description that says tablet or capsule."""
    drug = context.drug
    if drug is not None:
        key = DOSE_FORMS.get(drug.dose_form)
        return None if key is None else _COUNTED_AS.get(key.kind, key.kind)
    description = context.newrx.medication.drug_description
    kind = description_form(words(description), description.lower()).kind
    counted = _COUNTED_AS.get(kind or "")
    return counted if counted in ("tablet", "capsule") else None


# --- the directions name another drug ---


@dataclass(frozen=True, slots=True)
class _SigTerms:
    scanner: PhraseScanner  # every ingredient phrase, to read the description
    names: Mapping[str, str]  # phrases long enough to count in directions -> ingredient
    first_words: frozenset[str]  # cheap test: directions without one name no drug
    longest: int  # words in the longest phrase


@functools.lru_cache(maxsize=4)  # a reference is immutable and long-lived
def _sig_terms(reference: DrugReference) -> _SigTerms:
    phrases = ingredient_phrases(reference.drugs, reference.vocabulary)
    names = {phrase: name for phrase, name in phrases.items() if len(phrase) >= _SHORTEST_NAME}
    return _SigTerms(
        PhraseScanner(phrases),
        names,
        frozenset(phrase.split()[0] for phrase in names),
        max((len(phrase.split()) for phrase in names), default=1),
    )


def _other_drug_in_sig(context: CheckContext) -> Iterator[Finding]:
    reference = context.reference
    if reference is None:
        return
    text = context.newrx.medication.sig.text
    terms = _sig_terms(reference)
    if terms.first_words.isdisjoint(words(text)):
        return  # the directions name no known drug: the usual case, kept cheap
    description = context.newrx.medication.drug_description
    own = set(terms.scanner.scan(description))
    if context.drug is not None:
        own |= context.drug.ingredient_names
    if not own:
        return  # a description naming no known ingredient (a brand?) cannot be contradicted
    for name in _dosed(text.lower(), terms):
        if not any(_related(name, mine) for mine in own):
            yield Finding(
                CODE,
                Severity.WARNING,
                f'The directions say to take {name}, but the prescribed drug is "{description}".',
                {
                    "contradiction": "sig_names_other_drug",
                    "description": description,
                    "sig_drug": name,
                    "ingredients": sorted(own),
                },
            )


def _dosed(sig: str, terms: _SigTerms) -> list[str]:
    """Ingredients the directions say to take, in text order, each once."""
    found: dict[str, None] = {}
    for lead in _DOSE_LEAD.finditer(sig):
        clause_start = max((m.end() for m in _CLAUSE_END.finditer(sig, 0, lead.start())), default=0)
        if _NOT_THE_DOSE.intersection(words(sig[clause_start : lead.start()])):
            continue
        end = _CLAUSE_END.search(sig, lead.end())
        following = words(sig[lead.end() : end.start() if end else len(sig)])
        for length in range(min(terms.longest, len(following)), 0, -1):
            name = terms.names.get(" ".join(following[:length]))
            if name is not None:
                found[name] = None
                break
    return list(found)


def _related(name: str, mine: str) -> bool:
    """The same ingredient, or names too alike to call another drug: a shared word
    ("estradiol", "ethinyl estradiol") or one inside another ("amphetamine"); short words
    ("acid", "v") do not count."""
    theirs = [w for w in name.split() if len(w) >= _SHORTEST_NAME]
    ours = [w for w in mine.split() if len(w) >= _SHORTEST_NAME]
    return name == mine or any(a in b or b in a for a in theirs for b in ours)


# --- quantity unit and dose form ---


def _quantity_unit(description: str, form: str, unit: str) -> Finding | None:
    measured = MEASURED_UNITS.get(unit)
    counted = COUNTED_UNITS.get(unit)
    if measured is not None and form in _COUNTED_FORMS:
        said = measured
    elif counted is not None and counted != form:
        said = _plural(counted)
    else:
        return None
    expected = f", counted in {_plural(form)}" if form in _COUNTED_FORMS else ""
    return Finding(
        CODE,
        Severity.WARNING,
        f'The quantity is in {said}, but "{description}" is {_a(form)}{expected}.',
        {
            "contradiction": "quantity_unit_for_dose_form",
            "description": description,
            "dose_form": form,
            "quantity_unit": unit,
            "quantity_unit_name": said,
        },
    )


def _coded_form(description: str, form: str, code: str, coded: str) -> Finding:
    return Finding(
        CODE,
        Severity.WARNING,
        f'The coded dose form is {coded}, but "{description}" is {_a(form)}.',
        {
            "contradiction": "dose_form_differs",
            "description": description,
            "dose_form": form,
            "coded_form": code,
            "coded_form_name": coded,
        },
    )


def _plural(form: str) -> str:
    return _PLURAL.get(form, f"{form}s")


def _a(form: str) -> str:
    return f"an {form}" if form[0] in "aeiou" else f"a {form}"


# --- coded strength ---


def _coded_strength(value: str | None, unit: str | None) -> Strength | None:
    spelled = STRENGTH_UNITS.get(unit or "")
    amount = parse_decimal(value) if value is not None else None
    if spelled is None or amount is None:
        return None
    return canonical_strength(amount, spelled)


def _strength(
    description: str, coded: Strength, value: str | None, unit: str | None
) -> Iterator[Finding]:
    written = text_strengths(description)
    # one plain strength only: a combination or a concentration (mg/5 mL) has no one number
    # a coded strength must equal
    if len(written) != 1 or written[0].unit != coded.unit or same_strength(coded, written[0]):
        return
    said = written[0]
    yield Finding(
        CODE,
        Severity.WARNING,
        f"The coded strength is {_plain(coded)}, but the description "
        f'"{description}" says {_plain(said)}.',
        {
            "contradiction": "strength_differs",
            "description": description,
            "description_strength": _plain(said),
            "coded_strength": _plain(coded),
            "coded_strength_value": value,
            "coded_strength_unit": unit,
        },
    )


def _plain(strength: Strength) -> str:
    return f"{format_decimal(strength.value)} {strength.unit}"


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (inconsistent,)
