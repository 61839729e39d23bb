"""The patient page's tables: one-time sign-in codes, patient sessions (apart from the staff's
``web_sessions``), and the refill requests patients make from their page."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, utcnow


class SignInCode(Base):
    """A one-time code sent to a verified contact point: its hash (over the row's ID and the
    code), until when it holds, the wrong tries so far, and when it was used."""

    __tablename__ = "patient_sign_in_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patient_contacts.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PatientSession(Base):
    """A signed-in patient: the SHA-256 of the cookie's random token, the patient and the
    pharmacy it is bound to, the CSRF token its changes carry."""

    __tablename__ = "patient_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: the contact point the code went to (gone if it was removed since)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RefillRequest(Base):
    """A patient asked for more of a prescription: ``refill`` (refills remain: staff start the
    fill) or ``renewal`` (none remain: a pharmacist asks the prescriber, RxRenewalRequest);
    ``open`` until staff mark it ``done`` or ``declined``."""

    __tablename__ = "patient_refill_requests"
    __table_args__ = (Index("ix_patient_refill_requests_open", "pharmacy_id", "state"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12))
    handled_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
