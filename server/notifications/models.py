"""The notification outbox's table: every email and SMS the hub sends a patient, as sent, with
its delivery.

A row is written in the unit of work of the change that causes it (:func:`.store.enqueue`),
already rendered, so what was sent is what is kept; the worker (:mod:`.sending`) and the
provider's status callbacks (:mod:`.callbacks`) only ever move its state.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

# the tables referred to come with their models: a worker process that loads only this
# feature's must still resolve its foreign keys when it writes
from ..admin.models import Pharmacy
from ..db.models import Base, utcnow
from ..patients.models import PatientProfile

#: an email address's longest form (RFC 5321: 64 + 1 + 255) and an E.164 number both fit
RECIPIENT_MAX = 320


class Notification(Base):
    """One message to one patient on one channel (``state``: see :mod:`.store`)."""

    __tablename__ = "notifications"
    __table_args__ = (
        # what the worker and the sweep look for: due, not finished
        Index("ix_notifications_state_due", "state", "next_attempt_at"),
        # what a change that makes a pending one moot looks for (store.cancel)
        Index("ix_notifications_subject", "subject_id", "kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id), index=True)
    #: the patient's profile (none for a text to a number the hub knows no profile of)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    #: what it is about (a prescription, a fill), so a later change can cancel it while
    #: pending; not a foreign key: a notification outlives what it was about
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: the contact point it goes to (an email's unsubscribe link names it); none for a
    #: message the patient cannot turn off (a verification code)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: the event kind (eprescribe.notifications.EventKind)
    kind: Mapped[str] = mapped_column(String(40))
    #: ``email`` or ``sms``
    channel: Mapped[str] = mapped_column(String(8))
    #: the email address or E.164 number it goes to (patient data: never logged or audited)
    recipient: Mapped[str] = mapped_column(String(RECIPIENT_MAX))
    language: Mapped[str] = mapped_column(String(8))
    #: as rendered at enqueue: the email's subject, text and HTML alternative; the SMS's body
    #: in ``body``
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: when it is due (pending, retrying: already past the patient's quiet hours), or when a
    #: worker's claim on it lapses (sending)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: past this, a failed attempt is final: dead (set by the first attempt)
    dead_after: Mapped[dt.datetime | None]
    #: the provider's id of the message (an SMS's sid) and its last status
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    #: why the last attempt failed (no address, no content)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: when the server or provider took it, and when the handset had it (SMS callbacks)
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
