"""The payments feature's tables: each pharmacy's ledger, the payments asked of the provider,
the provider's events as received (once each), the patients' customers at the provider and the
pharmacy's price list. Written only through :mod:`.store`.

No card data anywhere: the provider's identifiers (customer, payment method, intent, charge,
refund) and what the provider says of a card to show it (brand, last four digits) only.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

# the tables referred to come with their models (a worker may load only this module)
from ..admin.models import Pharmacy
from ..db.models import Base, utcnow
from ..patients.models import PatientProfile

#: the provider's identifiers are at most 255 characters (Stripe's documented ceiling)
REF_MAX = 255


class LedgerEntry(Base):
    """One movement of what a patient owes (eprescribe.payments.ledger: the kinds and signs).

    ``cause_type`` and ``cause_id`` name what made it: the fill, consult or delivery a charge is
    for; the provider's payment intent a payment settles (so a webhook delivered twice pays
    once); the provider's refund. Unique per pharmacy and kind: nothing is charged twice."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("pharmacy_id", "kind", "cause_type", "cause_id"),
        # a patient's balance, their pages newest first, the receivables and a merge: their
        # entries by moment, the summed columns in the index (PostgreSQL reads no table rows)
        Index(
            "ix_ledger_entries_patient",
            "patient_id",
            "at",
            "id",
            postgresql_include=["currency", "kind", "amount", "pharmacy_id"],
        ),
        # the day's reconciliation and the collection figures
        Index("ix_ledger_entries_day", "pharmacy_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id))
    #: eprescribe.payments.EntryKind
    kind: Mapped[str] = mapped_column(String(16))
    #: minor units; positive but for an adjustment, whose sign it is
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: fill | consult | delivery | intent | refund | manual
    cause_type: Mapped[str] = mapped_column(String(16))
    cause_id: Mapped[str] = mapped_column(String(REF_MAX))
    #: what the money's source is at the provider (a payment's charge, a refund): what the
    #: reconciliation matches on
    provider_ref: Mapped[str | None] = mapped_column(String(REF_MAX), index=True)
    #: how a payment was taken: card_present (at the counter), online (the patient's page),
    #: saved_card (a plan's instalment)
    method: Mapped[str | None] = mapped_column(String(16))
    #: a refund's payment entry
    refunds_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    description: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PaymentIntent(Base):
    """A payment asked of the provider: settled only by its webhook, which writes the payment
    entry; ``status`` is ``creating`` until the provider answers, then the provider's
    (requires_action, processing, succeeded, canceled...), ``failed`` when refused, and
    ``mismatch`` when the provider received another amount. Written before the provider is
    asked, so money on its way counts against what may be asked next."""

    __tablename__ = "payment_intents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    #: the provider's intent; none while it is being asked (the row is written first, so a
    #: webhook that comes before the provider's answer finds it by ``metadata.hub_payment``)
    provider_id: Mapped[str | None] = mapped_column(String(REF_MAX), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    #: the key sent with the call that made it (a retry makes no second intent)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    #: the charge that settled it (the provider's balance transaction names it)
    charge_ref: Mapped[str | None] = mapped_column(String(REF_MAX))
    last_error: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(100))
    #: the consult whose fee it pays (paid in the consult's waiting room); no foreign key:
    #: the payments' tables name what they are for, the consults' own theirs
    consult_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PaymentCard(Base):
    """A card the patient typed into the provider's fields: first the setup the browser
    confirms (``setup_id``), then the provider's payment method it gave, with what the provider
    says of the card to show it (brand, last four digits, expiry; never its number). ``saved``:
    the patient asked to keep it for later payments (a plan's instalments)."""

    __tablename__ = "payment_cards"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    setup_id: Mapped[str] = mapped_column(String(REF_MAX), unique=True)
    payment_method: Mapped[str | None] = mapped_column(String(REF_MAX))
    brand: Mapped[str | None] = mapped_column(String(20))
    last4: Mapped[str | None] = mapped_column(String(4))
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    saved: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[dt.datetime | None]


class PaymentPlan(Base):
    """A balance split into instalments, charged to a saved card on their days. Its state is
    read from the ledger: an instalment is paid when its payment is on the ledger."""

    __tablename__ = "payment_plans"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PaymentCard.id))
    total: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: active | completed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]


class PaymentInstalment(Base):
    """One instalment of a plan: due on a day, asked of the provider then (``intent_id``),
    paid when the webhook settles that payment; a failure is tried again later."""

    __tablename__ = "payment_instalments"
    __table_args__ = (
        UniqueConstraint("plan_id", "number"),
        # the job's question: what is due and not asked yet
        Index("ix_payment_instalments_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PaymentPlan.id))
    number: Mapped[int]
    due: Mapped[dt.date]
    amount: Mapped[int] = mapped_column(BigInteger)
    #: pending | asked | paid | failed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    #: when to ask (the due day; later after a failure)
    next_attempt_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    intent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))


class PaymentEvent(Base):
    """A provider event as processed, once: its ID is the key (events arrive twice)."""

    __tablename__ = "payment_events"

    id: Mapped[str] = mapped_column(String(REF_MAX), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(REF_MAX))
    #: settled | ignored | mismatch | unknown_intent
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PaymentCustomer(Base):
    """A patient's customer at the provider (made on first need; saved cards hang on it)."""

    __tablename__ = "payment_customers"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), primary_key=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id))
    provider_id: Mapped[str] = mapped_column(String(REF_MAX), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PriceListItem(Base):
    """What a pharmacy charges for an item: ``consult``, ``delivery``, or ``ndc:<11 digits>``
    (a fill's patient-pay amount for that product)."""

    __tablename__ = "payment_prices"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id), primary_key=True)
    item: Mapped[str] = mapped_column(String(40), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


#: when a consult's fee is paid: billed after the consult (charged when it ends), may be paid
#: in the waiting room (or later), or must be paid before the pharmacist may admit the patient
CONSULT_FEE_POLICIES = ("after", "waiting_room", "before_admission")


class PaymentSettings(Base):
    """A pharmacy's payment settings (none: the defaults)."""

    __tablename__ = "payment_settings"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id), primary_key=True)
    #: one of CONSULT_FEE_POLICIES
    consult_fee: Mapped[str] = mapped_column(String(20), default="after")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
