"""RxNorm release files (Rich Release Format: ``RXNCONSO.RRF``, ``RXNREL.RRF``, ``RXNSAT.RRF``).

RRF lines are pipe-delimited with a trailing pipe and no header; the columns are fixed by the
RxNorm Technical Documentation (section 12). Only the RxNorm-normalised content is read:
``SAB=RXNORM`` atoms in English whose ``SUPPRESS`` flag is ``N`` (``O`` obsolete, ``Y``
suppressed by NLM, ``E`` suppressed by an editor are left out). The files run to hundreds of
megabytes, so each is streamed once, in that order, and only what the drug reference needs is
kept: the names of the concepts below, the relations among them, and their NDCs and DEA
schedules.

Concepts kept, by term type: clinical drugs (SCD), branded drugs (SBD), generic and branded packs
(GPCK, BPCK), and what links a drug to its parts: clinical drug components (SCDC) and forms
(SCDF, SBDF), ingredients (IN), brand names (BN), dose forms (DF). Precise and multiple
ingredients (PIN, MIN) are not needed: the strength a PIN qualifies is written in the drug's
name, and every MIN's parts are INs reached through the components.

``RXNREL`` direction: a row ``RXCUI1|...|REL|RXCUI2|...|RELA|...`` states the relationship the
*second* concept has to the *first* ("RXCUI2 RELA RXCUI1"): a row with RXCUI1 = an SCDC, RELA
``consists_of`` and RXCUI2 = an SCD says the SCD consists of the SCDC. Each asymmetric
relationship appears once per direction; either row is enough here, as inverse names
(``constitutes``, ``ingredient_of``, ...) are read back to the forward one.

NDCs come from ``RXNSAT`` ``ATN=NDC`` with ``SAB=RXNORM`` (the normalised 11-digit codes NLM
attaches to SCD, SBD and pack concepts). The DEA schedule comes from ``ATN=DCSA`` (values
``CI``..``CV``; NLM carries it from the labels, so its SAB is not RXNORM); when labels disagree,
the strictest schedule is kept.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import Final

from eprescribe.drugs.errors import RxNormFormatError
from eprescribe.drugs.forms import DOSE_FORMS, rxnorm_route
from eprescribe.drugs.model import SCHEDULE_CODES, Drug, Ingredient, MaxDose
from eprescribe.drugs.names import strip_salts, words
from eprescribe.drugs.ndc import normalize_ndc
from eprescribe.drugs.strength import parse_decimal
from eprescribe.drugs.vocabulary import Vocabulary

__all__ = [
    "CLINICAL",
    "PACKS",
    "RXNCONSO_COLUMNS",
    "RXNREL_COLUMNS",
    "RXNSAT_COLUMNS",
    "RxNormDrug",
    "RxNormStats",
    "clinical_drug",
    "clinical_name",
    "read_rxnorm",
]

RXNCONSO_COLUMNS: Final = (
    "RXCUI",
    "LAT",
    "TS",
    "LUI",
    "STT",
    "SUI",
    "ISPREF",
    "RXAUI",
    "SAUI",
    "SCUI",
    "SDUI",
    "SAB",
    "TTY",
    "CODE",
    "STR",
    "SRL",
    "SUPPRESS",
    "CVF",
)
RXNREL_COLUMNS: Final = (
    "RXCUI1",
    "RXAUI1",
    "STYPE1",
    "REL",
    "RXCUI2",
    "RXAUI2",
    "STYPE2",
    "RELA",
    "RUI",
    "SRUI",
    "SAB",
    "SL",
    "RG",
    "DIR",
    "SUPPRESS",
    "CVF",
)
RXNSAT_COLUMNS: Final = (
    "RXCUI",
    "LUI",
    "SUI",
    "RXAUI",
    "STYPE",
    "CODE",
    "ATUI",
    "SATUI",
    "ATN",
    "SAB",
    "ATV",
    "SUPPRESS",
    "CVF",
)

CLINICAL: Final = "SCD"
BRANDED: Final = "SBD"
PACKS: Final = frozenset({"GPCK", "BPCK"})
_DRUG_TTYS: Final = frozenset({CLINICAL, BRANDED, *PACKS})
_KEPT_TTYS: Final = _DRUG_TTYS | {"SCDC", "SCDF", "SBDF", "IN", "BN", "DF"}
_KEPT_SUPPRESS: Final = frozenset({"N", ""})

# RELA -> (forward name, whether the row states the inverse). Forward reads "subject RELA object"
# with the subject a drug (or component, form): SCD consists_of SCDC, SCDC has_ingredient IN,
# SBD has_ingredient BN, SCD has_dose_form DF, SBD tradename_of SCD, GPCK contains SCD, SCD isa
# SCDF.
_RELATIONS: Final = {
    "has_ingredient": ("has_ingredient", False),
    "ingredient_of": ("has_ingredient", True),
    "consists_of": ("consists_of", False),
    "constitutes": ("consists_of", True),
    "has_dose_form": ("has_dose_form", False),
    "dose_form_of": ("has_dose_form", True),
    "tradename_of": ("tradename_of", False),
    "has_tradename": ("tradename_of", True),
    "contains": ("contains", False),
    "contained_in": ("contains", True),
    "isa": ("isa", False),
    "inverse_isa": ("isa", True),
}
_C = {name: index for index, name in enumerate(RXNCONSO_COLUMNS)}
_R = {name: index for index, name in enumerate(RXNREL_COLUMNS)}
_S = {name: index for index, name in enumerate(RXNSAT_COLUMNS)}
_SCHEDULE_ORDER: Final = ("CI", "CII", "CIII", "CIV", "CV")
_BRAND_SUFFIX = re.compile(r"\s*\[[^\]]*\]$")
# "72 HR" dosing interval and "0.4 ML" / "120 ACTUAT" quantity factor before the ingredients.
_PREFIX = re.compile(r"(?:\d+ HR )?(?:\d*\.?\d+ (?:ML|L|G|MG|ACTUAT|UNT|SQCM|CM2) )?")
_PART = re.compile(r"(?P<name>.+?) (?P<value>\d*\.?\d+) (?P<unit>[A-Z%]+(?:/[A-Z0-9]+)?)")
_FORMS_BY_LENGTH: Final = sorted(DOSE_FORMS, key=len, reverse=True)


@dataclasses.dataclass(slots=True)
class RxNormStats:
    """What one read kept, for the operator's summary."""

    concepts: int = 0
    relations: int = 0
    ndcs: int = 0
    bad_ndcs: int = 0
    schedules: int = 0
    by_tty: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class RxNormDrug:
    """One SCD, SBD, GPCK or BPCK with what the release says about it.

    ``ingredients`` are IN names (lowercase, sorted); ``clinical_rxcui`` is the SCD an SBD is
    a brand of; ``contents`` the drugs (SCD or SBD RxCUIs) a pack contains; ``dea_schedule``
    the NCI code of the DCSA schedule.
    """

    rxcui: str
    tty: str
    name: str
    ingredients: tuple[str, ...] = ()
    brand: str | None = None
    dose_form: str | None = None
    dea_schedule: str | None = None
    ndcs: tuple[str, ...] = ()
    clinical_rxcui: str | None = None
    contents: tuple[str, ...] = ()


def read_rxnorm(
    conso: Iterable[bytes | str],
    rel: Iterable[bytes | str],
    sat: Iterable[bytes | str],
    stats: RxNormStats | None = None,
) -> list[RxNormDrug]:
    """The drugs of a release, from the lines of its three files (read in this order).

    RxNormFormatError on a line that is not RRF (wrong number of fields, not UTF-8): a release
    is machine-written, so such a line means a truncated or wrong file, and nothing of it is
    used.
    """
    stats = stats if stats is not None else RxNormStats()
    concepts = _concepts(conso, stats)
    links = _links(rel, concepts, stats)
    ndcs, schedules = _attributes(sat, concepts, stats)
    release = _Release(concepts, links)
    drugs = [
        release.drug(rxcui, tty, name, ndcs.get(rxcui, ()), _strictest(schedules.get(rxcui)))
        for rxcui, (tty, name) in concepts.items()
        if tty in _DRUG_TTYS
    ]
    for drug in drugs:
        stats.by_tty[drug.tty] = stats.by_tty.get(drug.tty, 0) + 1
    return drugs


def clinical_name(drug: RxNormDrug) -> str:
    """The clinical drug name: an SBD's name without its ``[Brand]`` suffix."""
    return _BRAND_SUFFIX.sub("", drug.name) if drug.tty == BRANDED else drug.name


def clinical_drug(drug: RxNormDrug, vocabulary: Vocabulary) -> Drug | None:
    """The reference's ``Drug`` for an SCD (or an SBD named as its SCD), or None when it has
    no ingredient at all.

    Strengths are read from the name (``<ingredient> <strength> <UNIT> / ... <Dose Form>``);
    ingredients are the release's INs, mapped onto the vocabulary's ingredient names so that
    classes, interactions and allergies apply. A name that does not read that way still gives
    a drug, with its ingredients and no strengths.
    """
    name = clinical_name(drug)
    form = drug.dose_form or _form_in_name(name)
    ingredients = _parts(name, form, drug.ingredients, vocabulary) or tuple(
        Ingredient(vocabulary.ingredient_for(i) or i, None, None) for i in drug.ingredients
    )
    if not ingredients:
        return None
    route = rxnorm_route(form or "")
    known = {
        i.name: vocabulary.ingredients[i.name]
        for i in ingredients
        if i.name in vocabulary.ingredients
    }
    classes = set().union(*(info.classes for info in known.values()))
    return Drug(
        name=name,
        ingredients=ingredients,
        dose_form=form or "",
        route=route,
        classes=vocabulary.route_classes(classes, route),
        dea_schedule=drug.dea_schedule,
        max_daily=tuple(
            MaxDose(info.name, *info.max_daily[route])
            for info in known.values()
            if route in info.max_daily
        ),
        rxcui=drug.rxcui,
        ndcs=drug.ndcs,
    )


# --- reading the files ---


def _fields(lines: Iterable[bytes | str], file: str, width: int) -> Iterator[list[str]]:
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as error:
            raise RxNormFormatError(f"{file} line {number}: not UTF-8") from error
        line = line.rstrip("\r\n")
        if not line:
            continue
        fields = line.split("|")
        if len(fields) == width + 1 and fields[-1] == "":
            fields.pop()
        elif len(fields) != width:
            raise RxNormFormatError(
                f"{file} line {number}: {len(fields)} fields, RRF has {width} and a final '|'"
            )
        yield fields


def _kept(fields: list[str], columns: dict[str, int]) -> bool:
    return fields[columns["SAB"]] == "RXNORM" and fields[columns["SUPPRESS"]] in _KEPT_SUPPRESS


def _concepts(lines: Iterable[bytes | str], stats: RxNormStats) -> dict[str, tuple[str, str]]:
    """RxCUI -> (term type, name) of the concepts kept."""
    concepts: dict[str, tuple[str, str]] = {}
    for fields in _fields(lines, "RXNCONSO.RRF", len(RXNCONSO_COLUMNS)):
        tty = fields[_C["TTY"]]
        if tty in _KEPT_TTYS and fields[_C["LAT"]] == "ENG" and _kept(fields, _C):
            concepts.setdefault(fields[_C["RXCUI"]], (tty, fields[_C["STR"]]))
    stats.concepts = len(concepts)
    return concepts


def _links(
    lines: Iterable[bytes | str], concepts: dict[str, tuple[str, str]], stats: RxNormStats
) -> dict[tuple[str, str], set[str]]:
    """(subject RxCUI, forward relation) -> object RxCUIs, between kept concepts."""
    links: dict[tuple[str, str], set[str]] = {}
    for fields in _fields(lines, "RXNREL.RRF", len(RXNREL_COLUMNS)):
        relation = _RELATIONS.get(fields[_R["RELA"]])
        if relation is None or not _kept(fields, _R):
            continue
        name, inverse = relation
        # The row states "RXCUI2 RELA RXCUI1"; an inverse name states it the other way round.
        first, second = fields[_R["RXCUI1"]], fields[_R["RXCUI2"]]
        subject, target = (first, second) if inverse else (second, first)
        if subject in concepts and target in concepts:
            links.setdefault((subject, name), set()).add(target)
    stats.relations = sum(len(targets) for targets in links.values())
    return links


def _attributes(
    lines: Iterable[bytes | str], concepts: dict[str, tuple[str, str]], stats: RxNormStats
) -> tuple[dict[str, tuple[str, ...]], dict[str, set[str]]]:
    ndcs: dict[str, dict[str, None]] = {}
    schedules: dict[str, set[str]] = {}
    for fields in _fields(lines, "RXNSAT.RRF", len(RXNSAT_COLUMNS)):
        attribute, rxcui = fields[_S["ATN"]], fields[_S["RXCUI"]]
        if attribute not in ("NDC", "DCSA") or fields[_S["SUPPRESS"]] not in _KEPT_SUPPRESS:
            continue
        concept = concepts.get(rxcui)
        if concept is None or concept[0] not in _DRUG_TTYS:
            continue
        value = fields[_S["ATV"]]
        if attribute == "DCSA":
            label = _schedule_label(value)
            if label is not None:
                schedules.setdefault(rxcui, set()).add(label)
                stats.schedules += 1
        elif fields[_S["SAB"]] == "RXNORM":
            ndc = normalize_ndc(value)
            if ndc is None:
                stats.bad_ndcs += 1
            else:
                ndcs.setdefault(rxcui, {})[ndc] = None
                stats.ndcs += 1
    return {rxcui: tuple(codes) for rxcui, codes in ndcs.items()}, schedules


def _schedule_label(value: str) -> str | None:
    """``CII``, ``C-II``, ``CIIN`` (non-narcotic) -> ``CII``; None for anything else."""
    label = value.strip().upper().replace("-", "").replace(" ", "")
    if label not in SCHEDULE_CODES and label.endswith("N"):
        label = label[:-1]
    return label if label in SCHEDULE_CODES else None


def _strictest(labels: set[str] | None) -> str | None:
    if not labels:
        return None
    return SCHEDULE_CODES[min(labels, key=_SCHEDULE_ORDER.index)]


@dataclasses.dataclass(frozen=True, slots=True)
class _Release:
    concepts: dict[str, tuple[str, str]]
    links: dict[tuple[str, str], set[str]]

    def drug(
        self, rxcui: str, tty: str, name: str, ndcs: tuple[str, ...], schedule: str | None
    ) -> RxNormDrug:
        clinical = self._targets(rxcui, "tradename_of", {CLINICAL}) if tty == BRANDED else []
        ingredients = self._ingredients(rxcui) or (
            self._ingredients(clinical[0]) if len(clinical) == 1 else ()
        )
        brands = self._targets(rxcui, "has_ingredient", {"BN"})
        forms = self._targets(rxcui, "has_dose_form", {"DF"})
        contents = self._targets(rxcui, "contains", {CLINICAL, BRANDED}) if tty in PACKS else []
        return RxNormDrug(
            rxcui=rxcui,
            tty=tty,
            name=name,
            ingredients=ingredients,
            brand=self._name(brands[0]) if brands else None,
            dose_form=self._name(forms[0]) if len(forms) == 1 else None,
            dea_schedule=schedule,
            ndcs=ndcs,
            clinical_rxcui=clinical[0] if len(clinical) == 1 else None,
            contents=tuple(contents),
        )

    def _ingredients(self, rxcui: str) -> tuple[str, ...]:
        """INs of a drug: its own, its components' (SCD consists_of SCDC has_ingredient IN)
        and its forms' (SCD isa SCDF has_ingredient IN)."""
        holders = [
            rxcui,
            *self._targets(rxcui, "consists_of", {"SCDC"}),
            *self._targets(rxcui, "isa", {"SCDF", "SBDF"}),
        ]
        names = {
            self._name(target).lower()
            for holder in holders
            for target in self._targets(holder, "has_ingredient", {"IN"})
        }
        return tuple(sorted(names))

    def _targets(self, rxcui: str, relation: str, ttys: set[str]) -> list[str]:
        return sorted(
            target
            for target in self.links.get((rxcui, relation), ())
            if self.concepts[target][0] in ttys
        )

    def _name(self, rxcui: str) -> str:
        return self.concepts[rxcui][1]


# --- names to ingredients ---


def _form_in_name(name: str) -> str | None:
    return next((form for form in _FORMS_BY_LENGTH if name.endswith(" " + form)), None)


def _parts(
    name: str, form: str | None, ins: tuple[str, ...], vocabulary: Vocabulary
) -> tuple[Ingredient, ...]:
    """Ingredients with strengths read from an SCD name; () when the name does not read."""
    prefix = _PREFIX.match(name)
    body = name[prefix.end() :] if prefix else name
    if form is None or not body.endswith(" " + form):
        return ()
    ingredients = []
    texts = body[: -len(form) - 1].split(" / ")
    for text in texts:
        match = _PART.fullmatch(text)
        strength = parse_decimal(match.group("value")) if match else None
        if match is None or strength is None:
            return ()
        precise = match.group("name").lower()
        ingredient = _ingredient_name(precise, ins, len(texts), vocabulary)
        basis = None if precise == ingredient else precise
        ingredients.append(Ingredient(ingredient, strength, match.group("unit"), basis))
    return tuple(ingredients)


def _ingredient_name(precise: str, ins: tuple[str, ...], parts: int, vocabulary: Vocabulary) -> str:
    """The ingredient a name part stands for: the vocabulary's name for it, else the release's
    IN whose words it contains (``metformin hydrochloride`` -> ``metformin``)."""
    known = vocabulary.ingredient_for(precise)
    if known is not None:
        return known
    part_words = set(words(precise))
    candidates = [i for i in ins if set(words(i)) <= part_words]
    if len(candidates) != 1 and parts == len(ins) == 1:
        candidates = list(ins)
    if len(candidates) == 1:
        return vocabulary.ingredient_for(candidates[0]) or candidates[0]
    return strip_salts(precise)
