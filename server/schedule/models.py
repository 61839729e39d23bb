"""The scheduled work's tables: the lease one hub process holds on a periodic job while it
runs it, the occasions a scheduled notice was written for (one row an occasion, so a job run
twice, or on two processes, writes it once), and each pharmacy's switch of an event kind."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..admin.models import Pharmacy
from ..db.models import Base, utcnow


class JobLease(Base):
    """Who runs a periodic job until when: taken by one statement, so two hub processes (or
    a beat and an embedded hub) never run the same job at once."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_run_at: Mapped[dt.datetime | None]


class NoticeOccasion(Base):
    """A scheduled notice decided for one occasion (``refill_due`` of one fill,
    ``not_collected_reminder`` of one fill, ``prescription_received`` of one prescription):
    the key that makes the job idempotent. Nothing may have been written for it (no channel,
    switched off): the occasion is spent all the same."""

    __tablename__ = "notice_occasions"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NoticeSwitch(Base):
    """A pharmacy's switch of one event kind (no row: on)."""

    __tablename__ = "pharmacy_notice_switches"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Pharmacy.id), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
