"""The operator's FDA NDC Directory import (``telepharm drugs import``) and loading it back into
the drug reference the checks use. The bundled reference has no NDCs on purpose: codes come
only from the FDA's own files."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select

from eprescribe.drugs import (
    DrugDataError,
    DrugReference,
    FdaFormatError,
    ImportedProduct,
    ImportStats,
    Ingredient,
    merge,
    read_packages,
    read_products,
)

from ..commands import CliError, Commands, group
from ..db import sync_engine
from ..db.models import utcnow
from ..settings import Settings
from .models import DrugProduct

BATCH = 5_000


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
                [
                    {
                        "product_id": p.product_id,
                        "product_ndc": p.product_ndc,
                        "data": _to_json(p),
                        "imported_at": now,
                    }
                    for p in batch
                ],
            )
    return stats


def reference_with_imports(engine: Engine) -> DrugReference:
    """The bundled reference plus whatever the operator imported."""
    with engine.connect() as connection:
        rows = connection.execute(select(DrugProduct.data)).scalars()
        products = [_from_json(data) for data in rows]
    bundled = DrugReference.bundled()
    return bundled.with_products(products) if products else bundled


def _batches(products: Iterable[ImportedProduct]) -> Iterator[list[ImportedProduct]]:
    iterator = iter(products)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch


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
        "import", help="load the FDA NDC Directory (product.txt, package.txt)"
    )
    drugs_import.add_argument("--product", type=Path, required=True, help="product.txt")
    drugs_import.add_argument("--package", type=Path, required=True, help="package.txt")
    drugs_import.set_defaults(run=cmd_drugs_import)


def cmd_drugs_import(args: argparse.Namespace, settings: Settings) -> None:
    for path in (args.product, args.package):
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    engine = sync_engine(settings.sync_database_url)
    try:
        stats = import_fda(engine, args.product, args.package)
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
