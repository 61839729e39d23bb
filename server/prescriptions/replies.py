"""A Status, Error or Verify posted to the intake for one of the hub's own outbound messages
(docs/outbound.md "Replies that come later"; docs/ncpdp-intake.md "Status, Error, Verify").

One unit of work stores the reply as received (its bytes and their hash, idempotent on
client, From and MessageID like every message received), finds the message it relates to
(``RelatesToMessageID`` among the messages sent to the same client's endpoint), moves that
message's delivery state (:func:`server.outbox.store.answered_later`) and audits both, the
audit entries last. A reply that matches nothing is stored and audited too, when it names a
pharmacy on this hub; it changes nothing. The caller answers only after the commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from eprescribe.ncpdp import Message

from .. import audit
from ..db import Database
from ..db.models import utcnow
from ..outbox import Deliver
from ..outbox import store as outbox
from ..outbox.replies import read_reply
from . import store

__all__ = ["REPLIES", "NowhereToStore", "ReplyReceived", "receive_reply"]

#: the transactions that answer a message: never answered with an Error (§6)
REPLIES = frozenset({"Status", "Error", "Verify"})


class NowhereToStore(LookupError):
    """The reply relates to no message the hub sent this client, and its To names no
    pharmacy on this hub: there is nothing to store it with."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReplyReceived:
    """What the store did with a reply: the message as received, and the outbound message it
    relates to (None when none matched) with its state before and after."""

    inbound_id: uuid.UUID
    outbound_id: uuid.UUID | None
    before: str | None = None
    state: str | None = None


async def receive_reply(
    db: Database,
    message: Message,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID | None,
    deliver: Deliver | None = None,
) -> ReplyReceived:
    """Store ``message`` (a parsed Status, Error or Verify) and apply it to the message it
    relates to. ``pharmacy_id``: the pharmacy its To names, if any (a matched reply is stored
    with its message's pharmacy). :class:`~server.prescriptions.writer.Duplicate` when the
    sender's MessageID is stored already; :class:`NowhereToStore` (nothing written) when it
    matches nothing and names no pharmacy."""
    now = utcnow()
    async with db.transaction() as session:
        received, next_id = await session.run_sync(
            lambda s: _receive(s, message, raw, actor, pharmacy_id, now)
        )
    if next_id is not None and deliver is not None:
        deliver([next_id])
    return received


def _receive(
    session: Session,
    message: Message,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID | None,
    now: dt.datetime,
) -> tuple[ReplyReceived, uuid.UUID | None]:
    header = message.header
    relates = header.relates_to_message_id
    row = outbox.sent_to(session, actor.id, relates) if relates is not None else None
    where = row.pharmacy_id if row is not None else pharmacy_id
    if where is None:
        raise NowhereToStore
    inbound_id = store.keep_received(session, message, raw, actor.id, where, now)
    answer = read_reply(message, raw)
    assert answer.reply is not None  # a Status, Error or Verify always reads as one
    detail: dict[str, Any] = {
        "message_id": header.message_id,
        "transaction": message.transaction,
        "relates_to_message_id": relates,
        "reply": [answer.reply.transaction, answer.reply.code, answer.reply.description_code],
    }
    if row is None:
        entry = audit.Event("script.reply", "message", str(inbound_id), "unmatched", where, detail)
        audit.append(session, [audit.values(actor, entry, now)])
        return ReplyReceived(inbound_id, None), None
    answered = outbox.answered_later(session, row, answer, inbound_id, now)
    detail |= {"outbound_message_id": str(row.id), "before": answered.before}
    detail["state"] = answered.state
    entries = [audit.Event("script.reply", "message", str(inbound_id), "success", where, detail)]
    if answered.event is not None:
        entries.append(answered.event)
    audit.append(session, [audit.values(actor, entry, now) for entry in entries])
    received = ReplyReceived(inbound_id, row.id, answered.before, answered.state)
    return received, answered.next_id
