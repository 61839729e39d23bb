"""How the API shows an outbound message and its delivery (part of a prescription's detail)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, cast

import msgspec

from ..openapi import Timestamp
from .models import OutboundMessage

DeliveryState = Literal["pending", "sending", "retrying", "delivered", "dead"]


class ReplyView(msgspec.Struct, frozen=True, kw_only=True):
    """The receiver's last SCRIPT reply: an attempt's synchronous answer, or one it posted
    later to the hub's intake."""

    transaction: Annotated[str, msgspec.Meta(description="Status, Error or Verify")]
    code: str | None
    description_code: str | None
    at: Timestamp
    received_later: Annotated[
        bool,
        msgspec.Meta(description="posted later to POST /ncpdp/script, not an attempt's answer"),
    ] = False


class AnsweredView(msgspec.Struct, frozen=True, kw_only=True):
    """The prescriber's answer to a request (filled in by the feature that reads answers)."""

    response: Annotated[
        str,
        msgspec.Meta(description="Approved, ApprovedWithChanges, Validated, Replace or Denied"),
    ]
    at: Timestamp


class OutboundView(msgspec.Struct, frozen=True, kw_only=True):
    """A SCRIPT message the hub sends about the prescription, and its delivery."""

    id: uuid.UUID
    message_type: Annotated[str, msgspec.Meta(description="e.g. RxChangeRequest")]
    message_id: Annotated[str, msgspec.Meta(description="its MessageID, the same every attempt")]
    state: DeliveryState
    attempts: int
    next_attempt_at: Annotated[
        Timestamp | None,
        msgspec.Meta(description="when it is tried next (or a worker's claim lapses)"),
    ]
    last_error: Annotated[str | None, msgspec.Meta(description="why the last attempt failed")]
    reply: ReplyView | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    answer: Annotated[
        AnsweredView | None,
        msgspec.Meta(description="a request's answer from the prescriber, once it came"),
    ] = None


def outbound_view(row: OutboundMessage) -> OutboundView:
    reply = (
        ReplyView(
            transaction=row.reply_type,
            code=row.reply_code,
            description_code=row.reply_description_code,
            at=row.replied_at.isoformat(),
            received_later=row.reply_inbound_message_id is not None,
        )
        if row.reply_type is not None and row.replied_at is not None
        else None
    )
    finished = row.state in ("delivered", "dead")
    return OutboundView(
        id=row.id,
        message_type=row.message_type,
        message_id=row.message_id,
        state=cast(DeliveryState, row.state),  # one of them: the store writes no other
        attempts=row.attempts,
        next_attempt_at=None if finished else row.next_attempt_at.isoformat(),
        last_error=row.last_error,
        reply=reply,
        created_at=row.created_at.isoformat(),
        delivered_at=row.delivered_at.isoformat() if row.delivered_at else None,
    )
