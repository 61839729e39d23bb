"""The pharmacies on the hub, which the operator adds; every pharmacy's data refers to its row."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, utcnow


class Pharmacy(Base):
    __tablename__ = "pharmacies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    ncpdpid: Mapped[str] = mapped_column(String(7), unique=True)
    npi: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    #: two-letter state whose dispensing rules apply (prescription expiry), if configured
    state: Mapped[str | None] = mapped_column(String(2))
    #: the street address its labels print, one line per line (none: labels cannot be made)
    address: Mapped[str | None] = mapped_column(Text)
    #: the phone number its labels print
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
