"""The audit trail's tables: the append-only, hash-chained entries and the chain's head."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, BigId, utcnow


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


class AuditPending(Base):
    """PostgreSQL: entries written by a transaction that has not committed yet.

    A transaction appends here without any lock; at its commit a deferred trigger
    (``audit_flush``, migration 0023) locks the chain's head, chains these rows onto the
    trail and deletes them, so the head is held only inside the commit, never across a
    round trip of the writer's. Always empty outside a transaction. (SQLite chains at once:
    it has one writer at a time.)
    """

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: the entry's canonical JSON after its ``seq`` (:func:`server.audit.canonical_tail`)
    tail: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(100))
    pharmacy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any]]
    #: the first row of an append: the trigger fires for it alone (once an append, not a row)
    flush: Mapped[bool] = mapped_column(default=False)
