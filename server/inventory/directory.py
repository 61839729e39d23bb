"""Which product a scanned or typed NDC is: the NDC Directory the operator imported
(``telepharm drugs import``), and the products a pharmacy already stocks.

A 10-digit NDC without hyphens may be read three ways (4-4-2, 5-3-2, 5-4-1); only a list of
real package codes picks the one meant, so a code no list knows, or one several readings of
which are known, is refused rather than guessed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe.dispensing.inventory import Refusal, StockRefused
from eprescribe.drugs import ImportedProduct

from ..drugs import listed_product
from ..drugs.models import DrugProduct
from .models import StockProduct


@dataclass(frozen=True, slots=True)
class Listing:
    """A package NDC (11 digits, 5-4-2) as the directory lists it."""

    ndc11: str
    description: str
    #: NCI code of the DEA schedule, None when not controlled
    dea_schedule: str | None


def product_codes(ndc11: str) -> list[str]:
    """The FDA product codes (labeler-product, hyphenated) a package NDC may belong to."""
    labeler, product = ndc11[:5], ndc11[5:9]
    codes = [f"{labeler}-{product}"]  # 5-4-2 and 5-4-1
    if labeler.startswith("0"):
        codes.append(f"{labeler[1:]}-{product}")  # 4-4-2
    if product.startswith("0"):
        codes.append(f"{labeler}-{product[1:]}")  # 5-3-2
    return codes


def listed(session: Session, candidates: Iterable[str]) -> list[Listing]:
    """The candidates the NDC Directory lists as packages, with their products."""
    wanted = sorted(set(candidates))
    codes = {code: ndc for ndc in wanted for code in product_codes(ndc)}
    if not codes:
        return []
    found: dict[str, Listing] = {}
    for data in session.scalars(
        select(DrugProduct.data).where(DrugProduct.product_ndc.in_(sorted(codes)))
    ):
        product = listed_product(data)
        for ndc in set(product.package_ndcs) & set(wanted):
            found.setdefault(ndc, Listing(ndc, _description(product), product.dea_schedule))
    return [found[ndc] for ndc in sorted(found)]


def stocked(session: Session, pharmacy_id: uuid.UUID, candidates: Iterable[str]) -> list[Listing]:
    """The candidates the pharmacy already stocks, as it recorded them."""
    rows = session.execute(
        select(StockProduct.ndc11, StockProduct.description, StockProduct.dea_schedule).where(
            StockProduct.pharmacy_id == pharmacy_id,
            StockProduct.ndc11.in_(sorted(set(candidates))),
        )
    ).all()
    return [Listing(*row) for row in sorted(rows)]


def resolve(session: Session, pharmacy_id: uuid.UUID, candidates: Sequence[str]) -> Listing:
    """The one product ``candidates`` (the 11-digit readings of one code) stand for: the
    directory's listing first (its schedule is current), else what the pharmacy stocks.
    StockRefused ``ndc_unknown`` or ``ndc_ambiguous``."""
    if not candidates:
        raise StockRefused(Refusal("ndc_invalid", "That is not an NDC."))
    for source in (listed(session, candidates), stocked(session, pharmacy_id, candidates)):
        if len(source) == 1:
            return source[0]
        if len(source) > 1:
            readings = ", ".join(listing.ndc11 for listing in source)
            raise StockRefused(
                Refusal(
                    "ndc_ambiguous",
                    f"The code may be any of {readings}: type the NDC with its hyphens.",
                )
            )
    raise StockRefused(
        Refusal(
            "ndc_unknown",
            f"NDC {candidates[0] if len(candidates) == 1 else '/'.join(candidates)} is not "
            "in the NDC Directory: import the directory (telepharm drugs import) or check "
            "the code.",
        )
    )


def _description(product: ImportedProduct) -> str:
    """The clinical name, with the brand when it says more (``... (Zestril)``)."""
    name, brand = product.name, product.proprietary_name
    text = name if not brand or brand.lower() in name.lower() else f"{name} ({brand})"
    return text[:200]
