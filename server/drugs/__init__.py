"""The operator's drug imports (``telepharm drugs import``: the FDA NDC Directory, or an RxNorm
release with ``--rxnorm``) and loading them back into the drug reference the checks use. The
bundled reference has no NDCs and no RxCUIs on purpose: codes come only from the FDA's and
NLM's own files."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.orm import Session

from eprescribe.drugs import (
    DrugDataError,
    DrugReference,
    FdaFormatError,
    ImportedProduct,
    ImportStats,
    Ingredient,
    RxNormDrug,
    RxNormFormatError,
    RxNormStats,
    merge,
    read_packages,
    read_products,
    read_rxnorm,
)

from ..commands import CliError, Commands, group
from ..db import sync_engine
from ..db.models import utcnow
from ..settings import Settings
from . import http
from .models import DrugProduct, RxNormConcept

BATCH = 5_000
RXNORM_FILES = ("RXNCONSO.RRF", "RXNREL.RRF", "RXNSAT.RRF")
_T = TypeVar("_T")


def setup(app: web.Application, settings: Settings) -> None:
    """``GET /api/v1/drugs``: the drug picker's search (``http.py``)."""
    app.router.add_get("/api/v1/drugs", http.search_drugs)


def import_fda(engine: Engine, product_file: Path, package_file: Path) -> ImportStats:
    """Replace the imported products with those of the two files, in one transaction."""
    stats = ImportStats()
    with package_file.open("rb") as packages_in:
        packages = list(read_packages(packages_in, stats))
    now = utcnow()
    with product_file.open("rb") as products_in, engine.begin() as connection:
        connection.execute(delete(DrugProduct))
        products = merge(read_products(products_in, stats=stats), packages)
        for batch in _batches(products):
            connection.execute(
                insert(DrugProduct),
                [product_row(p, now) for p in batch],
            )
    return stats


def product_row(product: ImportedProduct, now: dt.datetime) -> dict[str, Any]:
    """The ``drug_products`` row of an FDA product (the import's, and the demo's)."""
    return {
        "product_id": product.product_id,
        "product_ndc": product.product_ndc,
        "data": _to_json(product),
        "imported_at": now,
    }


def listed_product(data: dict[str, Any]) -> ImportedProduct:
    """The FDA product a ``drug_products`` row's ``data`` holds."""
    return _from_json(data)


def rxnorm_files(directory: Path) -> tuple[Path, Path, Path]:
    """The three RRF files of a release: in ``directory`` or in its ``rrf/`` folder (where
    NLM's zip puts them). CliError naming the first file missing."""
    folder = directory / "rrf" if (directory / "rrf" / RXNORM_FILES[0]).is_file() else directory
    paths = tuple(folder / name for name in RXNORM_FILES)
    for path in paths:
        if not path.is_file():
            raise CliError(f"no RxNorm file {path} (give the release directory or its rrf/)")
    return paths[0], paths[1], paths[2]


def import_rxnorm(engine: Engine, directory: Path) -> RxNormStats:
    """Replace the imported RxNorm drugs with those of the release in ``directory``.

    The files are read whole before the database is touched, so a file that is not RRF stops
    the import with the previous one intact; the replacement is one transaction.
    """
    conso, rel, sat = rxnorm_files(directory)
    stats = RxNormStats()
    with conso.open("rb") as conso_in, rel.open("rb") as rel_in, sat.open("rb") as sat_in:
        drugs = read_rxnorm(conso_in, rel_in, sat_in, stats)
    if not stats.by_tty.get("SCD"):
        raise RxNormFormatError(f"{conso} holds no clinical drug (SAB=RXNORM, TTY=SCD)")
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(delete(RxNormConcept))
        for batch in _batches(drugs):
            connection.execute(
                insert(RxNormConcept),
                [
                    {
                        "rxcui": d.rxcui,
                        "tty": d.tty,
                        "name": d.name,
                        "data": _rxnorm_json(d),
                        "imported_at": now,
                    }
                    for d in batch
                ],
            )
    return stats


def reference_with_imports(engine: Engine) -> DrugReference:
    """The bundled reference plus whatever the operator imported: the RxNorm release first
    (names and RxCUIs), then the FDA products, which then find RxNorm's drugs to join."""
    with engine.connect() as connection:
        return reference_from(connection)


def reference_from(connection: Connection | Session) -> DrugReference:
    """:func:`reference_with_imports` read through an open connection or session."""
    return reference_of(*imported_rows(connection))


Imported = tuple[list[tuple[str, str, str, dict[str, Any]]], list[dict[str, Any]]]


def imported_rows(connection: Connection | Session) -> Imported:
    """What the operator imported, as stored: the RxNorm concepts and the FDA products (read
    apart from :func:`reference_of`, so a server can build the reference off its event loop)."""
    concepts = [
        (row.rxcui, row.tty, row.name, row.data)
        for row in connection.execute(
            select(RxNormConcept.rxcui, RxNormConcept.tty, RxNormConcept.name, RxNormConcept.data)
        )
    ]
    products = list(connection.execute(select(DrugProduct.data)).scalars())
    return concepts, products


def reference_of(
    concepts: list[tuple[str, str, str, dict[str, Any]]], products: list[dict[str, Any]]
) -> DrugReference:
    """The bundled reference plus the imported rows of :func:`imported_rows`."""
    reference = DrugReference.bundled()
    if concepts:
        reference = reference.with_rxnorm(_rxnorm_from_json(*row) for row in concepts)
    fda = [_from_json(data) for data in products]
    return reference.with_products(fda) if fda else reference


def _batches(items: Iterable[_T]) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch


def _rxnorm_json(drug: RxNormDrug) -> dict[str, Any]:
    data = dataclasses.asdict(drug)
    for key in ("rxcui", "tty", "name"):  # columns of their own
        del data[key]
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


def _rxnorm_from_json(rxcui: str, tty: str, name: str, data: dict[str, Any]) -> RxNormDrug:
    return RxNormDrug(
        rxcui=rxcui,
        tty=tty,
        name=name,
        ingredients=tuple(data["ingredients"]),
        brand=data.get("brand"),
        dose_form=data.get("dose_form"),
        dea_schedule=data.get("dea_schedule"),
        ndcs=tuple(data["ndcs"]),
        clinical_rxcui=data.get("clinical_rxcui"),
        contents=tuple(data.get("contents", ())),
    )


def _to_json(product: ImportedProduct) -> dict[str, Any]:
    return dict(orjson.loads(orjson.dumps(product, default=_default)))


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(value)
    raise TypeError(type(value).__name__)


def _from_json(data: dict[str, Any]) -> ImportedProduct:
    ingredients = tuple(
        Ingredient(
            name=i["name"],
            strength=Decimal(i["strength"]) if i.get("strength") is not None else None,
            unit=i.get("unit"),
            basis=i.get("basis"),
        )
        for i in data["ingredients"]
    )
    fields = {f.name for f in dataclasses.fields(ImportedProduct)}
    plain = {k: v for k, v in data.items() if k in fields}
    return ImportedProduct(
        **{
            **plain,
            "ingredients": ingredients,
            "classes": frozenset(data["classes"]),
            "pharm_classes": tuple(data["pharm_classes"]),
            "package_ndcs": tuple(data.get("package_ndcs", ())),
        }
    )


def register_cli(commands: Commands) -> None:
    drugs = group(commands, "drugs", help="manage the drug reference")
    drugs_import = drugs.add_parser(
        "import",
        help="load the FDA NDC Directory (--product, --package) or an RxNorm release (--rxnorm)",
    )
    drugs_import.add_argument("--product", type=Path, help="FDA product.txt")
    drugs_import.add_argument("--package", type=Path, help="FDA package.txt")
    drugs_import.add_argument(
        "--rxnorm",
        type=Path,
        metavar="DIR",
        help="RxNorm release directory (RXNCONSO.RRF, RXNREL.RRF, RXNSAT.RRF, or their rrf/)",
    )
    drugs_import.set_defaults(run=cmd_drugs_import)


def cmd_drugs_import(args: argparse.Namespace, settings: Settings) -> None:
    fda = args.product is not None or args.package is not None
    if args.rxnorm is not None and fda:
        raise CliError("import --rxnorm and the FDA files (--product, --package) one at a time")
    if args.rxnorm is not None:
        _import_rxnorm(args.rxnorm, settings)
    elif args.product is None or args.package is None:
        raise CliError("give --product and --package (FDA NDC Directory) or --rxnorm DIR")
    else:
        _import_fda(args.product, args.package, settings)


def _import_fda(product: Path, package: Path, settings: Settings) -> None:
    for path in (product, package):
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    engine = sync_engine(settings.sync_database_url)
    try:
        stats = import_fda(engine, product, package)
    except (FdaFormatError, DrugDataError) as exc:
        raise CliError(f"not an FDA NDC Directory file: {exc}") from exc
    finally:
        engine.dispose()
    print(
        f"imported {stats.imported} products and packages from {stats.read} rows "
        f"({stats.skipped} excluded, {stats.bad} unreadable); workers use them from their "
        "next start"
    )
    for problem in stats.problems[:10]:
        print(f"  {problem}")


def _import_rxnorm(directory: Path, settings: Settings) -> None:
    if not directory.is_dir():
        raise CliError(f"no such directory: {directory}")
    engine = sync_engine(settings.sync_database_url)
    try:
        stats = import_rxnorm(engine, directory)
    except RxNormFormatError as exc:
        raise CliError(f"not an RxNorm release (nothing changed): {exc}") from exc
    finally:
        engine.dispose()
    counts = ", ".join(f"{count} {tty}" for tty, count in sorted(stats.by_tty.items()))
    print(
        f"imported {sum(stats.by_tty.values())} RxNorm drugs ({counts}) with {stats.ndcs} NDCs "
        f"and {stats.schedules} DEA schedules, from {stats.concepts} concepts and "
        f"{stats.relations} relations ({stats.bad_ndcs} unreadable NDCs); workers use them "
        "from their next start"
    )
