"""Persistent model of the hub (SQLAlchemy 2). Schema changes only through Alembic migrations."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX, IDENTIFIER_MAX, PARTY_TEXT_MAX
from eprescribe.patients import NAME_KEY_MAX, ZIP_LENGTH

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")
# Autoincrementing 64-bit keys; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime,
        dict[str, Any]: JSONDoc,
    }


class Pharmacy(Base):
    __tablename__ = "pharmacies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    ncpdpid: Mapped[str] = mapped_column(String(7), unique=True)
    npi: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    #: two-letter state whose dispensing rules apply (prescription expiry), if configured
    state: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


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


class OAuthClient(Base):
    """A registered OAuth client. Secrets are stored as SHA-256 of a 256-bit random value."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    grant_types: Mapped[str] = mapped_column(Text)
    token_endpoint_auth_methods: Mapped[str] = mapped_column(Text)
    redirect_uris: Mapped[str] = mapped_column(Text, default="")
    pharmacy_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pharmacies.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]


class User(Base):
    """A person who signs in: pharmacist, technician or pharmacy admin of one pharmacy."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: stored lower-case; unique across the hub, so a sign-in names no pharmacy
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    #: TOTP seed sealed with the data dir's secret key; None after an MFA reset
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    #: set once the user has proved the authenticator works; sign-in needs it
    totp_confirmed_at: Mapped[dt.datetime | None]
    #: the last accepted TOTP time step (a code is never accepted twice)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: may approve controlled-substance prescriptions (changed by a pharmacy_admin only)
    controlled_substances: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A browser's sign-in session; the cookie holds a random token, this row its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: set once password and TOTP are both verified
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: the password was right; waiting for the TOTP code
    pending_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    authenticated_at: Mapped[dt.datetime | None]


class AuthorizationCode(Base):
    """An OAuth authorization code (stored as its SHA-256), single use, ten minutes."""

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    auth_time: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    #: the tokens issued for it, revoked if the code is ever presented again
    family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class TokenFamily(Base):
    """The tokens of one sign-in: its rotating refresh tokens and the access tokens they
    bought (``fam`` claim). Revoking the family ends them all."""

    __tablename__ = "token_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: absolute lifetime: no refresh beyond it
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class RefreshToken(Base):
    """A refresh token (as its SHA-256); used once, then replaced by the next."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("token_families.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]


class LoginThrottle(Base):
    """Failed sign-ins per account and per address, and until when the next try must wait."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsultRow(Base):
    """A video consult (signaling.consults): its state, invite (as SHA-256), consent, outcome."""

    __tablename__ = "consults"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), index=True)
    pharmacist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    prescription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("prescriptions.id"))
    state: Mapped[str] = mapped_column(String(16))
    invite_digest: Mapped[str] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[dt.datetime]
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


class InboundMessage(Base):
    """A SCRIPT message exactly as received (21 CFR 1311.170(e): keep the original bytes)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("sender_client_id", "sender", "message_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    sender_client_id: Mapped[str] = mapped_column(String(64))
    #: Header/From as ``qualifier:value``, as long as the parser accepts
    sender: Mapped[str] = mapped_column(String(PARTY_TEXT_MAX))
    message_id: Mapped[str] = mapped_column(String(IDENTIFIER_MAX))
    relates_to_message_id: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX))
    transaction: Mapped[str] = mapped_column(String(40))
    version: Mapped[str] = mapped_column(String(10))
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Prescription(Base):
    __tablename__ = "prescriptions"
    __table_args__ = (
        Index("ix_prescriptions_pharmacy_state", "pharmacy_id", "state", "received_at"),
        Index("ix_prescriptions_pharmacy_message", "pharmacy_id", "message_id"),
        # a patient's accepted prescriptions (active medications) without reading the others
        Index("ix_prescriptions_patient_state", "patient_id", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    inbound_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inbound_messages.id"), unique=True
    )
    message_id: Mapped[str] = mapped_column(String(IDENTIFIER_MAX))
    prescriber_order_number: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX))
    #: set by the checks when the patient matched exactly one profile (or a new one was made)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))
    state: Mapped[str] = mapped_column(String(32))
    drug_description: Mapped[str] = mapped_column(String(DRUG_DESCRIPTION_MAX))
    dea_schedule: Mapped[str | None] = mapped_column(String(10))
    written_date: Mapped[dt.date] = mapped_column(Date)
    patient: Mapped[dict[str, Any]]
    prescriber: Mapped[dict[str, Any]]
    medication: Mapped[dict[str, Any]]
    #: everything else of the order: allergies, pharmacy, flags
    details: Mapped[dict[str, Any]]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: UrgencyIndicatorCode X: first in the queue (STAT)
    urgent: Mapped[bool] = mapped_column(default=False)
    #: the pharmacist working on it, until when (eprescribe.verification claims)
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    claimed_until: Mapped[dt.datetime | None]

    transitions: Mapped[list[PrescriptionTransition]] = relationship(
        back_populates="prescription",
        lazy="raise_on_sql",
        order_by="PrescriptionTransition.id",
    )
    findings: Mapped[list[Finding]] = relationship(
        back_populates="prescription", lazy="raise_on_sql", order_by="Finding.id"
    )


class PrescriptionTransition(Base):
    """One step of a prescription's state history: who moved it, when and why."""

    __tablename__ = "prescription_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    prescription: Mapped[Prescription] = relationship(
        back_populates="transitions", lazy="raise_on_sql"
    )


class PrescriptionNote(Base):
    """A pharmacist's or technician's note on a prescription (never sent to the prescriber)."""

    __tablename__ = "prescription_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ClarificationRequest(Base):
    """Outbox: a question for the prescriber, written with the state change that asks it and
    sent as an outbound SCRIPT message by a later sender (``sent_at`` set then)."""

    __tablename__ = "clarification_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    reason_code: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class Finding(Base):
    """One result of the prescription checks; a prescription's findings are replaced as a
    whole, in the transaction that moves it to the pharmacist's queue."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    prescription: Mapped[Prescription] = relationship(
        back_populates="findings", lazy="raise_on_sql"
    )


class DrugProduct(Base):
    """A product of the operator's FDA NDC Directory import (``telepharm drugs import``),
    stored as the drug reference's ``ImportedProduct`` with its package NDCs."""

    __tablename__ = "drug_products"

    product_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    product_ndc: Mapped[str] = mapped_column(String(12), index=True)
    data: Mapped[dict[str, Any]]
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only record of every read and change of patient data and of security events.

    Written in the same transaction as the change it records. Never contains patient data
    itself: only references (resource type and ID) and who/what/when/where/outcome.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    pharmacy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: position in the hash chain (1, 2, ...), assigned under the chain head's lock
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChain(Base):
    """The head of the audit hash chain: one row, locked by every transaction that appends."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


__all__ = [
    "AuditChain",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "ClarificationRequest",
    "ConsultRow",
    "ConsultStepRow",
    "DrugProduct",
    "Finding",
    "InboundMessage",
    "LoginThrottle",
    "OAuthClient",
    "PatientProfile",
    "Pharmacy",
    "Prescription",
    "PrescriptionNote",
    "PrescriptionTransition",
    "RefreshToken",
    "TokenFamily",
    "User",
    "WebSession",
    "utcnow",
]
