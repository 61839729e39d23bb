"""The operator's FDA NDC Directory import (``telepharm drugs import``) and loading it back into
the drug reference the checks use. The bundled reference has no NDCs on purpose: codes come
only from the FDA's own files."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select

from eprescribe.drugs import (
    DrugReference,
    ImportedProduct,
    ImportStats,
    Ingredient,
    merge,
    read_packages,
    read_products,
)

from .db.models import DrugProduct, utcnow

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
