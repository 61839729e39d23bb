"""The dispensing feature's tables: the fills of prescriptions with their transitions, and the
per-pharmacy sequence of Rx numbers. Written only through :mod:`.store`."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, BigId, JSONDoc, utcnow

#: the fill states a prescription has at most one of (eprescribe.dispensing.fills.OPEN)
_OPEN_SQL = "state IN ('filling', 'product_check', 'ready')"


class Fill(Base):
    """One fill of a prescription (0 the original, 1.. refills; a completion of a partial fill
    has the number of the fill it completes)."""

    __tablename__ = "fills"
    __table_args__ = (
        # the queues: fills of a pharmacy in a state, oldest first, read by keyset
        Index("ix_fills_pharmacy_state_since", "pharmacy_id", "state", "state_since", "id"),
        # one open fill a prescription, whatever races
        Index(
            "uq_fills_one_open",
            "prescription_id",
            unique=True,
            postgresql_where=text(_OPEN_SQL),
            sqlite_where=text(_OPEN_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(24))
    #: when it entered its current state (the queues' order)
    state_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    controlled: Mapped[bool] = mapped_column(default=False)
    days_supply: Mapped[int | None] = mapped_column(Integer)
    #: decimals as text, exactly as counted
    quantity_owed: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[str | None] = mapped_column(String(20))
    partial_reason: Mapped[str | None] = mapped_column(Text)
    ndc11: Mapped[str | None] = mapped_column(String(11))
    lot: Mapped[str | None] = mapped_column(String(20))
    expiry: Mapped[dt.date | None] = mapped_column(Date)
    serial: Mapped[str | None] = mapped_column(String(20))
    gtin: Mapped[str | None] = mapped_column(String(14))
    #: the clinical drug the reference knew the scanned NDC as
    drug: Mapped[str | None] = mapped_column(String(200))
    bin: Mapped[str | None] = mapped_column(String(20))
    filled_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    #: the user IDs of everyone who did a step of the filling (none of them checks it)
    fillers: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    checked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    handed_over_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    collected_by: Mapped[str | None] = mapped_column(String(100))
    id_checked: Mapped[bool | None]
    counselling: Mapped[str | None] = mapped_column(String(16))
    consult_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    signature: Mapped[bool | None]
    #: the label's canonical text as printed while filling (``labels.label_text``): what the
    #: product check compares; the submit needs it to be the label of the fill as it stands
    label_text: Mapped[str | None] = mapped_column(Text)
    label_printed_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[dt.datetime | None]
    ready_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FillTransition(Base):
    """One step of a fill's history: who moved it, when and why."""

    __tablename__ = "fill_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fills.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RxNumberSequence(Base):
    """The last Rx number each pharmacy gave: the next is one more, taken under this row's
    lock (an upsert), so two first fills never get the same number."""

    __tablename__ = "rx_number_sequences"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class FillImage(Base):
    """A photo of a fill (stock bottle, counted product, label on the vial) or the collector's
    signature at the hand-over: the record of an encrypted file of the image vault
    (``server.dispensing.images``), which holds the bytes. A retake does not delete the image it
    replaces: that one is kept, ``superseded_by`` the retake, out of the product check but in
    the record of what was shown and when."""

    __tablename__ = "fill_images"
    __table_args__ = (
        # a fill's images by kind, the current one (not superseded) first to find
        Index("ix_fill_images_fill_kind", "fill_id", "kind", "superseded_by"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    fill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fills.id"))
    #: stock_bottle, counted, vial_label or signature
    kind: Mapped[str] = mapped_column(String(16))
    #: what the stored (re-encoded) bytes are: image/jpeg or image/png
    media_type: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    #: hex SHA-256 of the stored (re-encoded, unencrypted) image
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    #: who took it, as the audit trail names them
    taken_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: the retake that replaced it (None: the fill's current image of its kind)
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Shipment(Base):
    """A ready fill sent to a delivery patient: the carrier and tracking number staff gave,
    ``shipped`` until it is marked ``delivered``. Written only by :mod:`.shipping`."""

    __tablename__ = "shipments"

    fill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fills.id"), primary_key=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(16))
    tracking_number: Mapped[str] = mapped_column(String(40))
    tracking_url: Mapped[str] = mapped_column(Text)
    #: ``shipped`` (out for delivery) or ``delivered``
    state: Mapped[str] = mapped_column(String(16))
    shipped_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    shipped_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]
