"""The tables of video consults: the consult (signaling.consults), its history, the seats of a
live room (signaling.rooms), the participants' call quality and the recording segments."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, BigId, utcnow


class ConsultRow(Base):
    """A video consult (signaling.consults): its state, invite (as SHA-256), consent, outcome."""

    __tablename__ = "consults"
    __table_args__ = (
        # a pharmacist's list, one state at a time, newest first (keyset pages): the page's
        # rows only, however many consults ended before
        Index(
            "ix_consults_pharmacist_state",
            "pharmacy_id",
            "pharmacist_id",
            "state",
            "created_at",
            "id",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), index=True)
    pharmacist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    prescription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("prescriptions.id"))
    state: Mapped[str] = mapped_column(String(16))
    invite_digest: Mapped[str] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[dt.datetime]
    #: the invite token sealed with the data dir's secret key (AES-GCM, bound to the consult's
    #: ID), so the patient signed in to their own page can open it again; none for consults
    #: scheduled before it was kept
    invite_sealed: Mapped[str | None] = mapped_column(String(200))
    invite_used_at: Mapped[dt.datetime | None]
    consent_at: Mapped[dt.datetime | None]
    consent_text_version: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
    counselling: Mapped[str | None] = mapped_column(String(16))
    #: each party's answer to recording (None: not asked); recording runs only while both say yes
    pharmacist_recording_consent: Mapped[bool | None]
    patient_recording_consent: Mapped[bool | None]
    #: bumped by every change, so announcements that arrive out of order can be told apart
    revision: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsultSeatRow(Base):
    """A side's place in a live consult (signaling.rooms): its socket and resume token."""

    __tablename__ = "consult_seats"

    consult_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consults.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    conn_id: Mapped[str] = mapped_column(String(32))
    #: counts the sockets that took the seat: a takeover notice for an older one is ignored
    generation: Mapped[int]
    #: SHA-256 of the current resume token (a new one at every join)
    resume_digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: the token this seat was last resumed with, still good until the new one is used (the
    #: ``joined`` carrying the new one may never have arrived)
    previous_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    connected_at: Mapped[dt.datetime]
    disconnected_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    #: when the grace period of the drop ran out and the consult was told
    released_at: Mapped[dt.datetime | None]
    #: a pharmacist's seat: the sign-in (token family) it was taken under, which a resume
    #: must find still standing (no foreign key: the check is a lookup, never a cascade)
    sign_in: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ConsultQualityRow(Base):
    """A participant's getStats summary, as the page reported it."""

    __tablename__ = "consult_quality"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consult_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consults.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime]
    bitrate_kbps: Mapped[float]
    fps: Mapped[float]
    packet_loss: Mapped[float]
    rtt_ms: Mapped[float]


class ConsultRecordingRow(Base):
    """A consented recording segment: the encrypted file under the data dir and what it holds."""

    __tablename__ = "consult_recordings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consult_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consults.id"), index=True)
    party: Mapped[str] = mapped_column(String(16))
    file: Mapped[str] = mapped_column(String(200))
    video_frames: Mapped[int]
    audio_frames: Mapped[int]
    dropped_frames: Mapped[int]
    bytes: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[dt.datetime]


class ConsultStepRow(Base):
    """One step of a consult's history: who, when, why."""

    __tablename__ = "consult_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consult_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consults.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime]
