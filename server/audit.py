"""The audit trail: who did what to which record, when, from where, with what outcome.

Entries reference records by type and ID and never carry patient data or secrets. They are
written in the same transaction as the change they record (``add``) or on their own
(``record``) for events that change nothing, such as a token request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database
from .db.models import AuditEvent, utcnow


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user or an OAuth client, with the pharmacy it belongs to, and from where."""

    kind: str  # "client", "user" or "system"
    id: str
    pharmacy_id: uuid.UUID | None = None
    ip: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


SYSTEM = Actor("system", "hub")


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    resource_type: str
    resource_id: str | None = None
    outcome: str = "success"
    pharmacy_id: uuid.UUID | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def values(actor: Actor, event: Event, at: dt.datetime | None = None) -> dict[str, Any]:
    """The audit row for ``event``, for callers that insert it themselves (in bulk)."""
    return {
        "at": at or utcnow(),
        "actor": str(actor)[:100],
        "pharmacy_id": event.pharmacy_id or actor.pharmacy_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "ip": actor.ip,
        "detail": event.detail,
    }


async def add(session: AsyncSession, actor: Actor, event: Event) -> None:
    """Record ``event`` inside the caller's transaction."""
    await session.execute(insert(AuditEvent).values(values(actor, event)))


async def record(db: Database, actor: Actor, event: Event) -> None:
    """Record ``event`` in a transaction of its own."""
    async with db.transaction() as session:
        await add(session, actor, event)
