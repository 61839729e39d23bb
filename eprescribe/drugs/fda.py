"""FDA NDC Directory text files (``product.txt``, ``package.txt`` from ``ndctext.zip``).

Both files are tab-separated with a header line of FDA column names (prescription-checks.md
§8); fields are never quoted, trailing empty fields may be missing, and the text mixes UTF-8
with Latin-1, so each line is decoded on its own. The files hold 100k+ rows: everything here
streams, and a bad row is counted and skipped instead of stopping the import.

``read_products`` maps a product onto the reference's model: ingredients from SUBSTANCENAME /
ACTIVE_NUMERATOR_STRENGTH / ACTIVE_INGRED_UNIT (';'-separated, aligned), the RxNorm dose form
for DOSAGEFORMNAME, the route, vocabulary classes for PHARM_CLASSES (strings the vocabulary does
not map are kept as they are) and the NCI code for DEASCHEDULE. ``read_packages`` reads the
package NDCs (normalised to 11 digits) and ``merge`` attaches them to their products.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, TypeVar

from eprescribe.drugs.errors import FdaFormatError
from eprescribe.drugs.forms import fda_dose_form, fda_route
from eprescribe.drugs.model import SCHEDULE_CODES, Ingredient
from eprescribe.drugs.names import strip_salts
from eprescribe.drugs.ndc import normalize_ndc
from eprescribe.drugs.strength import canonical_strength, format_decimal, parse_decimal
from eprescribe.drugs.vocabulary import Vocabulary

__all__ = [
    "PACKAGE_COLUMNS",
    "PRODUCT_COLUMNS",
    "ImportStats",
    "ImportedPackage",
    "ImportedProduct",
    "decode_line",
    "merge",
    "read_packages",
    "read_products",
]

PRODUCT_COLUMNS: Final = (
    "PRODUCTID",
    "PRODUCTNDC",
    "PRODUCTTYPENAME",
    "PROPRIETARYNAME",
    "PROPRIETARYNAMESUFFIX",
    "NONPROPRIETARYNAME",
    "DOSAGEFORMNAME",
    "ROUTENAME",
    "STARTMARKETINGDATE",
    "ENDMARKETINGDATE",
    "MARKETINGCATEGORYNAME",
    "APPLICATIONNUMBER",
    "LABELERNAME",
    "SUBSTANCENAME",
    "ACTIVE_NUMERATOR_STRENGTH",
    "ACTIVE_INGRED_UNIT",
    "PHARM_CLASSES",
    "DEASCHEDULE",
    "NDC_EXCLUDE_FLAG",
    "LISTING_RECORD_CERTIFIED_THROUGH",
)
PACKAGE_COLUMNS: Final = (
    "PRODUCTID",
    "PRODUCTNDC",
    "NDCPACKAGECODE",
    "PACKAGEDESCRIPTION",
    "STARTMARKETINGDATE",
    "ENDMARKETINGDATE",
    "NDC_EXCLUDE_FLAG",
    "SAMPLE_PACKAGE",
)
_KEPT_FLAGS: Final = frozenset({"", "N"})  # Y (and the excluded-file flags E, I, D, U) drop
_PRODUCT_NDC = re.compile(r"(\d{4}-\d{4}|\d{5}-\d{3,4})", re.ASCII)
# One PHARM_CLASSES entry: text up to a "[EPC]"-style tag. Entries may contain commas
# ("Anti-Inflammatory Agents, Non-Steroidal [CS]"), so split on the tags, not on commas.
_PHARM_CLASS = re.compile(r"\s*(.+?\[[A-Za-z/ ]+\])\s*(?:,|$)")
_PROBLEMS_KEPT: Final = 50
_T = TypeVar("_T")


@dataclasses.dataclass(slots=True)
class ImportStats:
    """Counters of one file read. Mutable on purpose: the readers are generators, so the
    caller passes one in and reads it once the stream is consumed."""

    read: int = 0
    imported: int = 0
    skipped: int = 0
    bad: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def bad_row(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.problems) < _PROBLEMS_KEPT:
            self.problems.append(f"line {line}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedProduct:
    """One FDA product listing mapped onto the reference's model."""

    product_id: str
    product_ndc: str
    product_type: str
    proprietary_name: str
    nonproprietary_name: str
    labeler: str
    ingredients: tuple[Ingredient, ...]
    dose_form: str
    route: str
    classes: frozenset[str]
    pharm_classes: tuple[str, ...]
    dea_schedule: str | None
    package_ndcs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """RxNorm-shaped name: ingredients in alphabetical order, then the dose form."""
        parts = sorted(_part_name(ingredient) for ingredient in self.ingredients)
        return f"{' / '.join(parts)} {self.dose_form}"


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedPackage:
    product_id: str
    product_ndc: str
    ndc: str
    description: str
    sample: bool


class _BadRow(Exception):
    pass


class _SkippedRow(Exception):
    pass


def decode_line(raw: bytes | str) -> str:
    """A line of an FDA file as text: UTF-8 when it is, Latin-1 otherwise (never fails)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_products(
    lines: Iterable[bytes | str],
    vocabulary: Vocabulary | None = None,
    stats: ImportStats | None = None,
) -> Iterator[ImportedProduct]:
    """Products of ``product.txt`` (lines as read from the file, header first)."""
    vocabulary = vocabulary or Vocabulary.bundled()
    stats = stats if stats is not None else ImportStats()
    for number, row in _rows(lines, PRODUCT_COLUMNS, stats):
        product = _guarded(stats, number, functools.partial(_product, row, vocabulary))
        if product is not None:
            yield product


def read_packages(
    lines: Iterable[bytes | str], stats: ImportStats | None = None
) -> Iterator[ImportedPackage]:
    """Packages of ``package.txt`` (lines as read from the file, header first)."""
    stats = stats if stats is not None else ImportStats()
    for number, row in _rows(lines, PACKAGE_COLUMNS, stats):
        package = _guarded(stats, number, functools.partial(_package, row))
        if package is not None:
            yield package


def merge(
    products: Iterable[ImportedProduct], packages: Iterable[ImportedPackage]
) -> Iterator[ImportedProduct]:
    """Products with their package NDCs attached (by PRODUCTID). Packages are gathered first
    (one short string each), products stream; a product without packages keeps none."""
    by_product: dict[str, list[str]] = {}
    for package in packages:
        by_product.setdefault(package.product_id, []).append(package.ndc)
    for product in products:
        ndcs = tuple(dict.fromkeys(by_product.get(product.product_id, ())))
        yield dataclasses.replace(product, package_ndcs=ndcs)


def _guarded(stats: ImportStats, number: int, build: Callable[[], _T]) -> _T | None:
    try:
        item = build()
    except _SkippedRow:
        stats.skipped += 1
        return None
    except _BadRow as error:
        stats.bad_row(number, str(error))
        return None
    stats.imported += 1
    return item


def _rows(
    lines: Iterable[bytes | str], columns: tuple[str, ...], stats: ImportStats
) -> Iterator[tuple[int, dict[str, str]]]:
    iterator = iter(lines)
    header = _header(next(iterator, None), columns)
    for number, raw in enumerate(iterator, start=2):
        line = decode_line(raw).rstrip("\r\n")
        if not line.strip():
            continue
        stats.read += 1
        fields = line.split("\t")
        if len(fields) > len(header):
            stats.bad_row(number, f"{len(fields)} fields, header has {len(header)}")
            continue
        fields += [""] * (len(header) - len(fields))
        yield number, {name: value.strip() for name, value in zip(header, fields, strict=True)}


def _header(raw: bytes | str | None, columns: tuple[str, ...]) -> list[str]:
    if raw is None:
        raise FdaFormatError("empty file: no header line")
    header = decode_line(raw).lstrip("\ufeff").rstrip("\r\n").split("\t")
    missing = [column for column in columns if column not in header]
    if missing:
        raise FdaFormatError(f"header lacks FDA columns: {', '.join(missing)}")
    return header


def _product(row: Mapping[str, str], vocabulary: Vocabulary) -> ImportedProduct:
    if row["NDC_EXCLUDE_FLAG"].upper() not in _KEPT_FLAGS:
        raise _SkippedRow
    product_ndc = row["PRODUCTNDC"]
    if not _PRODUCT_NDC.fullmatch(product_ndc):
        raise _BadRow(f"PRODUCTNDC {product_ndc!r} is not a labeler-product code")
    ingredients = _ingredients(row, vocabulary)
    names = frozenset(ingredient.name for ingredient in ingredients)
    route = fda_route(row["ROUTENAME"])
    classes, unmapped = _classes(row["PHARM_CLASSES"], names, vocabulary)
    return ImportedProduct(
        product_id=row["PRODUCTID"],
        product_ndc=product_ndc,
        product_type=row["PRODUCTTYPENAME"],
        proprietary_name=row["PROPRIETARYNAME"],
        nonproprietary_name=row["NONPROPRIETARYNAME"],
        labeler=row["LABELERNAME"],
        ingredients=ingredients,
        dose_form=fda_dose_form(row["DOSAGEFORMNAME"], route),
        route=route,
        classes=classes,
        pharm_classes=unmapped,
        dea_schedule=_schedule(row["DEASCHEDULE"]),
    )


def _ingredients(row: Mapping[str, str], vocabulary: Vocabulary) -> tuple[Ingredient, ...]:
    substances = _split(row["SUBSTANCENAME"])
    if not substances:
        raise _SkippedRow  # kits and bulk listings without an active ingredient
    strengths = _split(row["ACTIVE_NUMERATOR_STRENGTH"])
    units = _split(row["ACTIVE_INGRED_UNIT"])
    if not len(substances) == len(strengths) == len(units):
        raise _BadRow(
            f"{len(substances)} substances, {len(strengths)} strengths, {len(units)} units"
        )
    return tuple(
        _ingredient(substance, strength, unit, vocabulary)
        for substance, strength, unit in zip(substances, strengths, units, strict=True)
    )


def _ingredient(substance: str, strength: str, unit: str, vocabulary: Vocabulary) -> Ingredient:
    value = parse_decimal(strength)
    if value is None:
        raise _BadRow(f"strength {strength!r} of {substance} is not a positive number")
    precise = " ".join(substance.lower().split())
    name = vocabulary.ingredient_for(precise) or strip_salts(precise)
    canonical = canonical_strength(value, unit)
    basis = None if precise == name else precise
    if canonical is None:  # homeopathic and other units the reference does not compare
        return Ingredient(name, None, None, basis)
    return Ingredient(name, canonical.value, canonical.unit, basis)


def _classes(
    text: str, ingredients: frozenset[str], vocabulary: Vocabulary
) -> tuple[frozenset[str], tuple[str, ...]]:
    classes: set[str] = set()
    unmapped: list[str] = []
    for entry in _PHARM_CLASS.findall(text):
        mapped = vocabulary.classes_for_epc(entry, ingredients)
        classes |= mapped
        if not mapped:
            unmapped.append(entry)
    return frozenset(classes), tuple(unmapped)


def _schedule(text: str) -> str | None:
    label = text.strip().upper()
    if not label:
        return None
    if label not in SCHEDULE_CODES:
        raise _BadRow(f"DEASCHEDULE {text!r} is not CI..CV")
    return SCHEDULE_CODES[label]


def _package(row: Mapping[str, str]) -> ImportedPackage:
    if row["NDC_EXCLUDE_FLAG"].upper() not in _KEPT_FLAGS:
        raise _SkippedRow
    ndc = normalize_ndc(row["NDCPACKAGECODE"])
    if ndc is None or "-" not in row["NDCPACKAGECODE"]:
        raise _BadRow(f"NDCPACKAGECODE {row['NDCPACKAGECODE']!r} is not a hyphenated NDC")
    return ImportedPackage(
        product_id=row["PRODUCTID"],
        product_ndc=row["PRODUCTNDC"],
        ndc=ndc,
        description=row["PACKAGEDESCRIPTION"],
        sample=row["SAMPLE_PACKAGE"].upper() == "Y",
    )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";")] if text.strip() else []


def _part_name(ingredient: Ingredient) -> str:
    label = ingredient.basis or ingredient.name
    if ingredient.strength is None or ingredient.unit is None:
        return label
    return f"{label} {format_decimal(ingredient.strength)} {ingredient.unit}"
