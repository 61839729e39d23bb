"""Med sync as a pharmacist accepted it: one row a patient (written by :mod:`.medsync`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, JSONDoc, utcnow


class MedSync(Base):
    """The patient's sync day (``anchor``, repeating every ``cycle_days``) and the short
    fills the pharmacist accepted (as proposed: med, starts_on, days_supply, quantity,
    sync_on)."""

    __tablename__ = "med_sync"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), index=True)
    anchor: Mapped[dt.date] = mapped_column(Date)
    cycle_days: Mapped[int] = mapped_column(Integer)
    short_fills: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    accepted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
