"""The patients feature's table: the pharmacy's patient profiles."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from eprescribe.patients import NAME_KEY_MAX, ZIP_LENGTH

from ..db.models import Base, JSONDoc, utcnow


class PatientProfile(Base):
    """A pharmacy's profile of one patient; prescriptions link to it only on an exact match."""

    __tablename__ = "patients"
    __table_args__ = (
        Index(
            "ix_patients_match", "pharmacy_id", "last_name_key", "first_name_key", "date_of_birth"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: normalised names (eprescribe.patients.normalise_name, bounded by the same constant)
    last_name_key: Mapped[str] = mapped_column(String(NAME_KEY_MAX))
    first_name_key: Mapped[str] = mapped_column(String(NAME_KEY_MAX))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1))
    postal_code: Mapped[str] = mapped_column(String(ZIP_LENGTH))
    #: name, address and contact as received
    demographics: Mapped[dict[str, Any]]
    #: allergy entries recorded on the profile (free text, resolved by the drug reference)
    allergies: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
