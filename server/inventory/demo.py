"""The demo's shelf (``telepharm demo``): fictional products in the NDC Directory's format
(labeler 99999, which the FDA never assigns) and stock of them in the demo pharmacy, so the
sample prescription (lisinopril 10 mg tablets) can be filled at once, and a Schedule II
product shows its perpetual log.

An operator who imports the real NDC Directory replaces these listings (the import replaces
the whole directory); stock already received stays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from eprescribe.drugs import ImportedProduct, merge, read_packages, read_products
from eprescribe.drugs.fda import PACKAGE_COLUMNS, PRODUCT_COLUMNS

from .. import audit
from ..admin.models import Pharmacy
from ..db import Database, insert_ignoring_conflicts
from ..db.models import utcnow
from ..drugs import product_row
from ..drugs.models import DrugProduct
from .models import StockProduct
from .service import Inventory
from .store import Receipt

#: the demo's products, as rows of the FDA files: (product code, brand, generic, form,
#: substance, strength, unit, DEA schedule, package code, package description)
_LISTINGS = (
    ("99999-410", "Lisinopril", "Lisinopril", "TABLET", "LISINOPRIL", "10", "mg/1", "",
     "99999-410-90", "90 TABLET in 1 BOTTLE (99999-410-90)"),
    ("99999-520", "Oxycodone Hydrochloride", "Oxycodone Hydrochloride", "TABLET",
     "OXYCODONE HYDROCHLORIDE", "5", "mg/1", "CII",
     "99999-520-01", "100 TABLET in 1 BOTTLE (99999-520-01)"),
    ("99999-630", "Atorvastatin Calcium", "Atorvastatin Calcium", "TABLET, FILM COATED",
     "ATORVASTATIN CALCIUM", "20", "mg/1", "",
     "99999-630-30", "30 TABLET, FILM COATED in 1 BOTTLE (99999-630-30)"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoStock:
    ndc11: str
    lot: str
    #: days from the day of seeding
    expires_in: int
    quantity: int
    reorder_point: int


DEMO_STOCK = (
    DemoStock("99999041090", "DEMO-LIS-1", 540, 270, 90),
    DemoStock("99999052001", "DEMO-OXY-1", 400, 100, 30),
    DemoStock("99999063030", "DEMO-ATO-1", 365, 20, 30),  # low: below its reorder point
)


#: a listing in the order of ``_LISTINGS``
Listing = tuple[str, str, str, str, str, str, str, str, str, str]


def demo_products(listings: tuple[Listing, ...] = _LISTINGS) -> list[ImportedProduct]:
    """The demo listings (or others of the same shape) as the NDC Directory import reads
    them."""
    products, packages = [_tsv(PRODUCT_COLUMNS)], [_tsv(PACKAGE_COLUMNS)]
    for code, brand, generic, form, substance, strength, unit, schedule, package, text in listings:
        product_id = f"{code}_demo"
        products.append(
            _tsv(
                {
                    "PRODUCTID": product_id,
                    "PRODUCTNDC": code,
                    "PRODUCTTYPENAME": "HUMAN PRESCRIPTION DRUG",
                    "PROPRIETARYNAME": brand,
                    "NONPROPRIETARYNAME": generic,
                    "DOSAGEFORMNAME": form,
                    "ROUTENAME": "ORAL",
                    "LABELERNAME": "Demo Fictional Pharma",
                    "SUBSTANCENAME": substance,
                    "ACTIVE_NUMERATOR_STRENGTH": strength,
                    "ACTIVE_INGRED_UNIT": unit,
                    "DEASCHEDULE": schedule,
                    "NDC_EXCLUDE_FLAG": "N",
                },
                PRODUCT_COLUMNS,
            )
        )
        packages.append(
            _tsv(
                {
                    "PRODUCTID": product_id,
                    "PRODUCTNDC": code,
                    "NDCPACKAGECODE": package,
                    "PACKAGEDESCRIPTION": text,
                    "NDC_EXCLUDE_FLAG": "N",
                    "SAMPLE_PACKAGE": "N",
                },
                PACKAGE_COLUMNS,
            )
        )
    return list(merge(read_products(products), read_packages(packages)))


def _tsv(values: dict[str, str] | tuple[str, ...], columns: tuple[str, ...] = ()) -> str:
    if isinstance(values, tuple):
        return "\t".join(values)
    return "\t".join(values.get(column, "") for column in columns)


async def add_to_directory(db: Database, products: list[ImportedProduct]) -> None:
    """List ``products`` in the NDC Directory, unless listed already."""
    now = utcnow()
    async with db.transaction() as session:
        dialect = session.get_bind().dialect.name
        await session.execute(
            insert_ignoring_conflicts(DrugProduct, dialect),
            [product_row(p, now) for p in products],
        )


async def seed_demo(db: Database, ncpdpid: str) -> int:
    """The demo listings, and the demo stock of each product the pharmacy has never
    stocked (so seeding again adds nothing); the number of products stocked now."""
    await add_to_directory(db, demo_products())
    async with db.sessions() as session:
        pharmacy_id = await session.scalar(select(Pharmacy.id).where(Pharmacy.ncpdpid == ncpdpid))
        assert pharmacy_id is not None, "the demo pharmacy is seeded first"
        stocked = set(
            await session.scalars(
                select(StockProduct.ndc11).where(StockProduct.pharmacy_id == pharmacy_id)
            )
        )
    inventory = Inventory(db)
    actor = audit.Actor("operator", "demo", pharmacy_id)
    today = utcnow().date()
    for item in DEMO_STOCK:
        if item.ndc11 in stocked:
            continue
        expiry = today + dt.timedelta(days=item.expires_in)
        receipt = Receipt((item.ndc11,), item.lot, expiry, Decimal(item.quantity))
        await inventory.receive(actor, pharmacy_id, receipt)
        await inventory.set_reorder_point(
            actor, pharmacy_id, item.ndc11, Decimal(item.reorder_point)
        )
    return len(stocked | {item.ndc11 for item in DEMO_STOCK})
