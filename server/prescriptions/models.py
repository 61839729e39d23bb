"""The prescriptions feature's tables: the SCRIPT messages as received, the prescriptions with
their transitions, findings and notes, and the questions queued for prescribers. Written only
through :mod:`.store` (and the intake's :mod:`.writer`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX, IDENTIFIER_MAX, PARTY_TEXT_MAX
from eprescribe.workflow import REVIEWABLE, State

from ..db.models import Base, BigId, utcnow


def _state_in(states: frozenset[State]) -> str:
    """A predicate on ``state`` in plain SQL (a partial index's, and the queries' that it
    serves: the planner proves the one implies the other only from literal values)."""
    return "state IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(states)))


#: the prescriptions whose checks have not finished (migration 0042 writes the same)
UNCHECKED = _state_in(frozenset({State.RECEIVED, State.CHECKING}))
#: the prescriptions awaiting a pharmacist's decision (migration 0042 writes the same)
REVIEWABLE_STATES = _state_in(REVIEWABLE)


class InboundMessage(Base):
    """A SCRIPT message exactly as received (21 CFR 1311.170(e): keep the original bytes)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("sender_client_id", "sender", "message_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    sender_client_id: Mapped[str] = mapped_column(String(64))
    #: Header/From as ``qualifier:value`` (``Party.text``), as long as the parser accepts
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
        # the queue's pages in its order (urgent first, then oldest first), with a state and
        # without (the keyset of server.prescriptions.queue): a page reads its own rows only
        Index(
            "ix_prescriptions_queue_state",
            "pharmacy_id",
            "state",
            "test",
            "urgent",
            "received_at",
            "id",
        ),
        Index("ix_prescriptions_queue", "pharmacy_id", "test", "urgent", "received_at", "id"),
        # the claims running (the queue's revision counts them): the rows with a claim only
        Index(
            "ix_prescriptions_claims",
            "pharmacy_id",
            "claimed_until",
            postgresql_where=text("claimed_until IS NOT NULL"),
            sqlite_where=text("claimed_until IS NOT NULL"),
        ),
        Index("ix_prescriptions_pharmacy_message", "pharmacy_id", "message_id"),
        # the schedule's "received" job, across pharmacies: the window's rows in its order
        # (server.schedule.jobs.received)
        Index("ix_prescriptions_received", "received_at", "id"),
        # a patient's accepted prescriptions (active medications) without reading the others
        Index("ix_prescriptions_patient_state", "patient_id", "state"),
        # the sweep (server.worker.sweep): the prescriptions not checked yet, oldest change
        # first, and those awaiting a decision with their findings' basis: each reads the
        # work waiting, not the history
        Index(
            "ix_prescriptions_unchecked",
            "updated_at",
            "id",
            postgresql_where=text(UNCHECKED),
            sqlite_where=text(UNCHECKED),
        ),
        Index(
            "ix_prescriptions_reviewable",
            "patient_id",
            "checked_basis",
            postgresql_include=["id"],
            postgresql_where=text(REVIEWABLE_STATES),
            sqlite_where=text(REVIEWABLE_STATES),
        ),
        # the pharmacy's Rx numbers are its own, and each names one prescription
        UniqueConstraint("pharmacy_id", "rx_number", name="uq_prescriptions_pharmacy_rx_number"),
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
    #: from a message with Header/TestMessage: kept and audited, acknowledged, never in a queue,
    #: never checked, never linked to a patient (it stays ``received``)
    test: Mapped[bool] = mapped_column(default=False)
    #: the pharmacist working on it, until when (eprescribe.verification claims)
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    claimed_until: Mapped[dt.datetime | None]
    #: the version of the patient's picture (PatientPicture) the findings were computed on
    checked_basis: Mapped[int | None] = mapped_column(BigInteger)
    #: the prescription this one takes the place of (a prescriber's approved change) or
    #: renews (an approved renewal), and which of the two (``change`` or ``renewal``)
    replaces_prescription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("prescriptions.id"), index=True
    )
    replacement: Mapped[str | None] = mapped_column(String(16))
    #: the prior authorization's approval number a prescriber confirmed (RxChangeResponse
    #: Validated)
    prior_authorization: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX))
    #: the pharmacy's prescription number (7 digits), given at the first fill
    rx_number: Mapped[str | None] = mapped_column(String(7))
    #: how many of its fills were handed over (a CancelRx is denied once one was)
    fills_dispensed: Mapped[int] = mapped_column(default=0, server_default="0")
    #: the fill statuses the prescriber asked to be told (the NewRx's RxFillIndicator, as an
    #: RxFillIndicatorChange last set it); None: none
    rx_fill_indicator: Mapped[str | None] = mapped_column(String(50))

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
    """A request to the prescriber, written with the decision that asks it, with the message
    that carries it (its delivery is the outbox's, ``server.outbox``): a question or another
    change request (an RxChangeRequest, ``request_code`` its MessageRequestCode), or a renewal
    request (an RxRenewalRequest, reason code ``renewal``). The prescriber's answer relates to
    ``message_id`` (its ``RelatesToMessageID``)."""

    __tablename__ = "clarification_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    reason_code: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: the message that asks it (none for a question asked before the outbox sent anything)
    outbound_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outbound_messages.id")
    )
    #: RxChangeRequest or RxRenewalRequest
    message_type: Mapped[str] = mapped_column(
        String(40), default="RxChangeRequest", server_default="RxChangeRequest"
    )
    #: the message's MessageID (none for a question asked before the outbox sent anything)
    message_id: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX), index=True)
    #: an RxChangeRequest's MessageRequestCode (G, T, P, S, D, OS, U); none for a renewal
    request_code: Mapped[str | None] = mapped_column(String(2))
    #: what else was asked: sub-codes and medications proposed, refills asked for
    detail: Mapped[dict[str, Any] | None]


class PrescriberAnswer(Base):
    """A prescriber's answer (RxChangeResponse, RxRenewalResponse) to a request the hub sent
    about a prescription: one a request (its ``request_id`` is unique), with the message as
    received, what it said and the prescription it made, if any."""

    __tablename__ = "prescriber_answers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    #: the prescription the request was about
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    #: the hub's request it answers (RxChangeRequest, RxRenewalRequest)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbound_messages.id"), unique=True)
    inbound_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inbound_messages.id"), unique=True
    )
    transaction: Mapped[str] = mapped_column(String(40))
    #: the Response choice: Approved, ApprovedWithChanges, Validated, Replace, Denied
    response: Mapped[str] = mapped_column(String(24))
    #: the ReasonCode values, space-separated (at most 10 of at most 3 characters)
    reason_codes: Mapped[str | None] = mapped_column(String(40))
    #: ReferenceNumber (a Validated answer's approval number)
    reference_number: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX))
    #: Note or DenialReason
    text: Mapped[str | None] = mapped_column(Text)
    #: the prescription the answer made (Approved, ApprovedWithChanges, Replace)
    new_prescription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("prescriptions.id"))
    #: SHA-256 of the answer's Body (canonical form): a second answer under another MessageID
    #: with the same Body is the same answer
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


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


class PatientPicture(Base):
    """The version of a patient's picture for the checks: their accepted and open
    prescriptions and their allergies. Every change of the picture counts it up in the unit
    of work that changes it; findings record the version they were computed on, so stale ones
    are known (and checked again) without comparing pictures. Its row lock orders a decision
    against a change of the picture it rests on."""

    __tablename__ = "patient_pictures"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QueueRevision(Base):
    """A share of a pharmacy's queue revision: counted up in the unit of work of every change
    to what its queues show (a prescription written, moved, claimed, checked, linked; a
    patient's picture changed), one of its :data:`~.revisions.SHARDS` rows drawn at random, so
    writers of one pharmacy seldom wait for the same row; the revision is their sum, which
    every commit makes larger, read from at most that many rows however long the history
    (:mod:`.revisions`)."""

    __tablename__ = "queue_revisions"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)
