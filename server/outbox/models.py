"""The outbox's table: every SCRIPT message the hub sends, with its delivery.

A row is written in the unit of work of the change that causes it (:func:`.store.enqueue`),
so a message exists exactly when its change committed; delivery (:mod:`.delivery`) only ever
moves its state. Nothing here knows which feature wrote it.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from eprescribe.ncpdp.types import IDENTIFIER_MAX, PARTY_TEXT_MAX

from ..db.models import Base, utcnow


class OutboundMessage(Base):
    """One outbound SCRIPT message: the exact bytes sent (every attempt sends these), where
    to, and how its delivery stands (``state``: see :mod:`server.outbox`)."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        # a prescription's messages leave in this order
        UniqueConstraint("prescription_id", "position"),
        # what the sweep looks for: due, not finished
        Index("ix_outbound_messages_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    #: what it is about (none for an answer about a prescription the hub cannot find)
    prescription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("prescriptions.id"))
    #: its place among the prescription's messages (1, 2, ...): the order they are delivered in
    position: Mapped[int] = mapped_column(Integer)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), index=True)
    #: the OAuth client (the prescriber system) whose registered endpoint receives it
    client_id: Mapped[str] = mapped_column(String(64))
    #: Header/To as ``qualifier:value``
    recipient: Mapped[str] = mapped_column(String(PARTY_TEXT_MAX))
    message_type: Mapped[str] = mapped_column(String(40))
    #: Header/MessageID: the same on every attempt, so the receiver can de-duplicate
    message_id: Mapped[str] = mapped_column(String(IDENTIFIER_MAX), unique=True)
    relates_to_message_id: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: when it is due (pending, retrying), or when a claim on it lapses (sending)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: past this, a failed delivery is not tried again: it is dead-lettered (set by the first
    #: attempt, cleared by an operator's retry: the bound counts from then)
    dead_after: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: the last reply: Status, Error or Verify, its codes and bytes (an attempt's synchronous
    #: answer, or one posted later to the intake)
    reply_type: Mapped[str | None] = mapped_column(String(16))
    reply_code: Mapped[str | None] = mapped_column(String(8))
    reply_description_code: Mapped[str | None] = mapped_column(String(8))
    reply_message_id: Mapped[str | None] = mapped_column(String(IDENTIFIER_MAX))
    reply: Mapped[bytes | None] = mapped_column(LargeBinary)
    replied_at: Mapped[dt.datetime | None]
    #: set when that reply came later, posted to the intake (``POST /ncpdp/script``): the
    #: message as received; ``None`` for an attempt's synchronous answer
    reply_inbound_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inbound_messages.id")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]
