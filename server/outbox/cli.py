"""``telepharm outbox list | show ID | retry ID``: outbound messages and their delivery, for
operators. ``ID`` is the message's ID (``list`` shows it) or its SCRIPT MessageID."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..commands import CliError, Commands, group, with_database
from ..db import Database
from ..settings import Settings
from . import DELIVER_TASK, QUEUE, store
from .models import OutboundMessage

log = logging.getLogger(__name__)
OPERATOR = audit.Actor("operator", "cli")
LIST_DEFAULT = 50


def register_cli(commands: Commands) -> None:
    outbox = group(commands, "outbox", help="outbound SCRIPT messages and their delivery")
    listing = outbox.add_parser("list", help="the latest messages, newest first")
    listing.add_argument("--state", choices=store.STATES, help="only messages in this state")
    listing.add_argument(
        "--limit", type=int, default=LIST_DEFAULT, help=f"at most this many ({LIST_DEFAULT})"
    )
    listing.set_defaults(run=cmd_list)
    show = outbox.add_parser("show", help="one message: its delivery, the last reply")
    show.add_argument("id", metavar="ID", help="the message's ID or its MessageID")
    show.add_argument(
        "--payload", action="store_true", help="print the exact bytes sent (patient data)"
    )
    show.set_defaults(run=cmd_show)
    retry = outbox.add_parser("retry", help="send a dead message again (same MessageID)")
    retry.add_argument("id", metavar="ID", help="the message's ID or its MessageID")
    retry.set_defaults(run=cmd_retry)


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    if not 1 <= args.limit <= 10_000:
        raise CliError("--limit must be from 1 to 10000")

    async def work(db: Database) -> list[OutboundMessage]:
        query = select(OutboundMessage).order_by(
            OutboundMessage.created_at.desc(), OutboundMessage.id
        )
        if args.state:
            query = query.where(OutboundMessage.state == args.state)
        async with db.sessions() as session:
            return list(await session.scalars(query.limit(args.limit)))

    rows = with_database(settings, work)
    print("id\tstate\tattempts\ttype\tmessage_id\tprescription\tcreated\tlast_error")
    for row in rows:
        print(
            "\t".join(
                [
                    str(row.id),
                    row.state,
                    str(row.attempts),
                    row.message_type,
                    row.message_id,
                    str(row.prescription_id or "-"),
                    row.created_at.isoformat(timespec="seconds"),
                    row.last_error or "-",
                ]
            )
        )


def _find(session: Session, key: str) -> OutboundMessage:
    # the hub's MessageIDs are 32 hex digits, which read as a UUID too: either may match
    matches = OutboundMessage.message_id == key
    with contextlib.suppress(ValueError):
        matches = or_(OutboundMessage.id == uuid.UUID(key), matches)
    row = session.scalar(select(OutboundMessage).where(matches))
    if row is None:
        raise CliError(f"no outbound message {key}")
    return row


def cmd_show(args: argparse.Namespace, settings: Settings) -> None:
    def read(session: Session) -> OutboundMessage:
        row = _find(session, args.id)
        event = audit.Event(
            "outbound.read",
            "outbound_message",
            str(row.id),
            pharmacy_id=row.pharmacy_id,
            detail={"payload": bool(args.payload)},
        )
        audit.append(session, [audit.values(OPERATOR, event)])
        return row

    async def work(db: Database) -> OutboundMessage:
        async with db.transaction() as session:
            return await session.run_sync(read)

    row = with_database(settings, work)
    print(json.dumps(_shown(row), indent=2))
    if args.payload:
        print(row.payload.decode("utf-8", "replace"))


def _shown(row: OutboundMessage) -> dict[str, Any]:
    def at(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row.id),
        "state": row.state,
        "attempts": row.attempts,
        "message_type": row.message_type,
        "message_id": row.message_id,
        "relates_to_message_id": row.relates_to_message_id,
        "prescription_id": str(row.prescription_id) if row.prescription_id else None,
        "position": row.position,
        "client_id": row.client_id,
        "recipient": row.recipient,
        "sha256": row.sha256,
        "created_at": at(row.created_at),
        "next_attempt_at": None if row.state in store.FINISHED else at(row.next_attempt_at),
        "dead_after": at(row.dead_after),
        "delivered_at": at(row.delivered_at),
        "last_error": row.last_error,
        "reply": None
        if row.reply_type is None
        else {
            "transaction": row.reply_type,
            "code": row.reply_code,
            "description_code": row.reply_description_code,
            "message_id": row.reply_message_id,
            "at": at(row.replied_at),
        },
    }


def cmd_retry(args: argparse.Namespace, settings: Settings) -> None:
    def again(session: Session) -> uuid.UUID:
        try:
            return store.retry(session, _find(session, args.id).id, OPERATOR).id
        except store.NotRetryable as exc:
            raise CliError(str(exc)) from exc

    async def work(db: Database) -> uuid.UUID:
        async with db.transaction() as session:
            message_id = await session.run_sync(again)
            store.enqueued(session)  # published below, by this command
        return message_id

    message_id = with_database(settings, work)
    published = _publish(settings, message_id)
    print(
        f"outbound message {message_id} is pending again"
        + ("" if published else " (the broker did not answer: a hub's sweep sends it)")
    )


def _publish(settings: Settings, message_id: uuid.UUID) -> bool:
    from ..worker import create_celery
    from ..worker.publisher import PUBLISH_RETRY

    try:
        create_celery(settings).send_task(
            DELIVER_TASK,
            args=[[str(message_id)]],
            queue=QUEUE,
            retry=True,
            retry_policy=PUBLISH_RETRY,
        )
    except Exception as exc:  # the broker away: the message is due, the sweep finds it
        log.warning("could not publish %s (%s)", message_id, type(exc).__name__)
        return False
    return True
