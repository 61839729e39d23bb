"""The operator's imports of the FDA NDC Directory and of an RxNorm release, as the drug
reference reads them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, utcnow


class DrugProduct(Base):
    """A product of the operator's FDA NDC Directory import (``telepharm drugs import``),
    stored as the drug reference's ``ImportedProduct`` with its package NDCs."""

    __tablename__ = "drug_products"

    product_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    product_ndc: Mapped[str] = mapped_column(String(12), index=True)
    data: Mapped[dict[str, Any]]
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RxNormConcept(Base):
    """A clinical drug, branded drug or pack of the operator's RxNorm import (``telepharm drugs
    import --rxnorm``), stored as the drug reference's ``RxNormDrug``: ``data`` holds its
    ingredient names, brand, dose form, DEA schedule, NDCs, the SCD of a brand and the drugs a
    pack contains."""

    __tablename__ = "rxnorm_concepts"

    rxcui: Mapped[str] = mapped_column(String(16), primary_key=True)
    tty: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
