"""A prescriber's RxFillIndicatorChange, received: which fill statuses it wants to be told by
RxFill from now on (docs/dispensing.md "RxFill").

One unit of work keeps the message as received, finds the prescription it is about the way a
CancelRx finds one (:func:`server.prescriptions.cancels.candidates` and
:func:`eprescribe.cancellations.match`), locks it (fills lock it first too, so an RxFill
being written waits for the change or went before it) and stores the new indicator; every
RxFill written after the commit follows it. Audited either way; the sender is answered Status
(the change needs no answer of its own). A test message changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from eprescribe.cancellations import Found, match
from eprescribe.ncpdp import CancelRequest, Message
from eprescribe.ncpdp.rxfillindicatorchange import RxFillIndicatorChange

from .. import audit
from ..db import Database
from ..db.models import utcnow
from ..prescriptions import cancels
from ..prescriptions import store as prescriptions
from ..prescriptions.models import Prescription

__all__ = ["receive_indicator_change"]


async def receive_indicator_change(
    db: Database,
    message: Message,
    body: RxFillIndicatorChange,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
) -> uuid.UUID | None:
    """Store and apply one RxFillIndicatorChange; the prescription it changed (None when none
    matched, or a test message). :class:`~server.prescriptions.writer.Duplicate` for a
    MessageID stored already."""
    now = utcnow()
    async with db.transaction() as session:
        return await session.run_sync(
            lambda s: _receive(s, message, body, raw, actor, pharmacy_id, now)
        )


def _receive(
    session: Session,
    message: Message,
    body: RxFillIndicatorChange,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    now: dt.datetime,
) -> uuid.UUID | None:
    header = message.header
    inbound_id = prescriptions.keep_received(session, message, raw, actor.id, pharmacy_id, now)
    detail: dict[str, Any] = {"message_id": header.message_id, "indicator": body.indicator}
    if header.test_message:
        event = audit.Event(
            "script.fill_indicator",
            "message",
            str(inbound_id),
            outcome="test",
            pharmacy_id=pharmacy_id,
            detail={**detail, "test": True},
        )
        prescriptions.save(session, [], [audit.values(actor, event, now)])
        return None
    request = CancelRequest.of(header, body.order)
    found = match(request, cancels.candidates(session, pharmacy_id, actor.id, request))
    if not isinstance(found, Found):
        event = audit.Event(
            "script.fill_indicator",
            "message",
            str(inbound_id),
            outcome="not_found",
            pharmacy_id=pharmacy_id,
            detail={**detail, "why": found.reason.value},
        )
        prescriptions.save(session, [], [audit.values(actor, event, now)])
        return None
    rx_id = found.candidate.prescription_id
    prescriptions.load(session, [rx_id], pharmacy_id=pharmacy_id)  # the lock fills take
    session.execute(
        update(Prescription)
        .where(Prescription.id == rx_id)
        .values(rx_fill_indicator=body.indicator, updated_at=now)
    )
    event = audit.Event(
        "prescription.fill_indicator",
        "prescription",
        str(rx_id),
        pharmacy_id=pharmacy_id,
        detail=detail,
    )
    prescriptions.save(session, [], [audit.values(actor, event, now)])
    return rx_id
