"""A real SMTP server (aiosmtpd) on loopback for tests of the email channel, and a notification
sent to it by the worker's own sender, read back as the patient's mail program would."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Protocol, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import update

from server.db import Database
from server.db.models import utcnow
from server.notifications.models import Notification
from server.notifications.sending import Sender
from server.settings import Settings
from tests.support.processes import free_port

Handler = TypeVar("Handler")


class Receiving(Protocol):
    """An SMTP handler that keeps the envelopes it took."""

    @property
    def received(self) -> list[Envelope]: ...


@contextmanager
def smtp_server(handler: Handler) -> Iterator[tuple[Handler, int]]:
    """``handler`` serving SMTP on a free loopback port: (handler, port), stopped after."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


async def emailed(
    db: Database,
    settings: Settings,
    mailbox: tuple[Receiving, int],
    notification_id: uuid.UUID,
    subject: str,
) -> EmailMessage:
    """The notification, due now, sent by the worker's sender to the SMTP server ``mailbox``
    (its handler and port); the one message with ``subject`` that arrived there."""
    async with db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(next_attempt_at=utcnow())
        )
    handler, port = mailbox
    sending = dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port,
                                  smtp_security="none", smtp_timeout=5.0,
                                  mail_from="notify@pharmacy.example.org")  # fmt: skip
    sender = await asyncio.to_thread(Sender.from_settings, sending)
    try:
        await asyncio.to_thread(sender.send_many, [notification_id])
    finally:
        await asyncio.to_thread(sender.close)
    messages = [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in handler.received]  # fmt: skip
    (mail,) = [m for m in messages if m["Subject"] == subject]
    assert isinstance(mail, EmailMessage)
    return mail
