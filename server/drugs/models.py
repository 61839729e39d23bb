"""The operator's import of the FDA NDC Directory, as the drug reference reads it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String
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
