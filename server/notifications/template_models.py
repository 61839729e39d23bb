"""A pharmacy's own notification templates, and its notification settings (whether drug
names may show in texts and email subjects). Written only by :mod:`.template_store`."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..admin.models import Pharmacy
from ..db.models import Base, utcnow


class PharmacyTemplate(Base):
    """A pharmacy's template of one kind in one language. ``version`` counts its changes
    (a save or a reset); after a reset the texts are empty and the default is used."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("pharmacy_id", "kind", "language"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id))
    #: the event kind (eprescribe.notifications.EventKind)
    kind: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    #: none: reset to the default
    sms: Mapped[str | None] = mapped_column(Text)
    email_subject: Mapped[str | None] = mapped_column(Text)
    email_text: Mapped[str | None] = mapped_column(Text)
    email_html: Mapped[str | None] = mapped_column(Text)
    #: the user who made this version
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NotificationSettings(Base):
    """A pharmacy's notification settings (no row: the defaults, drug names not allowed)."""

    __tablename__ = "notification_settings"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id), primary_key=True)
    #: drug names may show in SMS texts and email subjects (minimum necessary: off)
    allow_drug_names: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
