"""The email channel: one message to one patient through an SMTP server (aiosmtplib).

The message (:func:`build_message`) is plain text with an optional HTML alternative, a
``Message-ID`` the caller gives (a retry sends the same one, so a receiving system that saw the
first copy may drop the second), and, for notifications a patient may turn off, the RFC 8058
one-click unsubscribe headers (``List-Unsubscribe`` with an https URL and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``; mailbox providers honour them on
messages whose DKIM signature covers them: the relay signs).

:meth:`SmtpEmail.send` is the blocking entry point a worker calls (it runs the conversation on
an event loop of its own, ``asyncio.run``); :meth:`SmtpEmail.send_async` is for async code.
Neither raises for what the server answered; the :class:`~server.notifications.Outcome`:

- delivered: the server took the message (its reply to DATA);
- may pass, tried again: a refused connection, a timeout, a dropped connection, a TLS
  handshake that failed, any 4xx reply (greylisting, a full mailbox, a busy server);
- permanent: a 5xx reply (recipient unknown, sender or message refused, authentication
  failed), the server lacks what the settings ask (STARTTLS, AUTH), an address or header the
  message cannot carry.

Server replies often repeat the recipient's address: it is replaced by ``<address>`` in the
outcome, which may be logged and kept.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib

from ..settings import Settings
from . import Outcome

log = logging.getLogger(__name__)
#: a message ID as RFC 5322 writes it, with the angle brackets
MESSAGE_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+>")
ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+")


def message_id(key: str, domain: str) -> str:
    """The ``Message-ID`` of the notification whose stable key (its outbox row) is ``key``."""
    return f"<{key}@{domain}>"


@dataclass(frozen=True, slots=True)
class Email:
    """One message to one recipient."""

    to: str
    subject: str
    text: str
    message_id: str
    html: str | None = None
    #: the one-click unsubscribe URL (https); none for a message the patient cannot turn off
    unsubscribe_url: str | None = None

    def __post_init__(self) -> None:
        if not MESSAGE_ID.fullmatch(self.message_id):
            raise ValueError(f"not a Message-ID (<id@domain>): {self.message_id!r}")
        if self.unsubscribe_url is not None and urlsplit(self.unsubscribe_url).scheme != "https":
            raise ValueError("the one-click unsubscribe URL must be https (RFC 8058)")


def build_message(email: Email, sender: str, now: datetime | None = None) -> EmailMessage:
    """The message as sent; ValueError for an address or subject it cannot carry."""
    if not ADDRESS.fullmatch(email.to):
        raise ValueError("the recipient address is not valid")
    if any(c in email.subject for c in "\r\n"):
        raise ValueError("the subject has a line break")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = email.message_id
    # an automatic message: no vacation replies to it (RFC 3834)
    message["Auto-Submitted"] = "auto-generated"
    if email.unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


class EmailChannel(Protocol):
    """Sends one email; never raises for the other side's answer."""

    def send(self, email: Email) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    #: ``starttls``, ``tls`` (implicit, usually port 465) or ``none`` (loopback only)
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    #: seconds the whole conversation of one message may take
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.mail_from,
            timeout=settings.smtp_timeout,
        )


#: how long :meth:`SmtpEmail.close` lets connections still closing finish (a TLS connection's
#: close_notify goes back and forth after the conversation has ended)
CLOSING_GRACE = 0.1


class SmtpEmail:
    """Sends each message over its own SMTP connection. :meth:`send` (blocking, for a worker,
    which has no event loop running) runs on one event loop of its own, kept until
    :meth:`close` (also: ``with SmtpEmail(...) as channel``)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._runner: asyncio.Runner | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmail:
        return cls(SmtpConfig.from_settings(settings))

    def __enter__(self) -> SmtpEmail:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, email: Email) -> Outcome:
        """Blocking: for a worker, which has no event loop running."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.send_async(email))

    def send_many(self, emails: Sequence[Email]) -> list[Outcome]:
        """Blocking: each of ``emails`` in order, over one SMTP session (see
        :meth:`send_many_async`); an outcome each."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.send_many_async(emails))

    def close(self) -> None:
        """Let the connections still closing finish, then close the event loop."""
        if self._runner is not None:
            self._runner.run(asyncio.sleep(CLOSING_GRACE))
            self._runner.close()
            self._runner = None

    async def send_async(self, email: Email) -> Outcome:
        config = self._config
        try:
            message = build_message(email, config.sender)
        except ValueError as exc:
            return Outcome.refused(str(exc))
        try:
            async with asyncio.timeout(config.timeout):
                _, reply = await aiosmtplib.send(
                    message,
                    hostname=config.host,
                    port=config.port,
                    username=config.username or None,
                    password=config.password or None,
                    use_tls=config.security == "tls",
                    start_tls=config.security == "starttls",
                    timeout=config.timeout,
                )
        except Exception as exc:
            outcome = failure(exc)
            log.info("email %s not sent: %s", email.message_id, outcome.reason)
            return outcome
        return Outcome.sent(_redact(reply))

    async def send_many_async(self, emails: Sequence[Email]) -> list[Outcome]:
        """Each of ``emails`` over one SMTP session (connecting, the greeting, TLS and
        authentication once, not once a message: a worker's batch costs a conversation, not
        a connection, a message). Each message's conversation has the timeout a single
        send has. A refusal of one message (a 4xx or 5xx reply) leaves the session open for
        the next (the client resets the envelope); anything else (a dropped connection, a
        timeout) ends it, and the next message opens another. At most
        :data:`SESSION_MESSAGES` a session (relays limit them)."""
        outcomes: list[Outcome] = []
        client: aiosmtplib.SMTP | None = None
        sent_here = 0
        try:
            for email in emails:
                if client is not None and sent_here >= SESSION_MESSAGES:
                    await _quit(client)
                    client, sent_here = None, 0
                outcome, client = await self._one(client, email)
                sent_here += 1
                outcomes.append(outcome)
        finally:
            if client is not None:
                await _quit(client)
        return outcomes

    async def _one(
        self, client: aiosmtplib.SMTP | None, email: Email
    ) -> tuple[Outcome, aiosmtplib.SMTP | None]:
        """One message over ``client`` (connected first when none); the session to go on
        with (none when it ended)."""
        config = self._config
        try:
            message = build_message(email, config.sender)
        except ValueError as exc:
            return Outcome.refused(str(exc)), client
        try:
            async with asyncio.timeout(config.timeout):
                if client is None:
                    client = aiosmtplib.SMTP(
                        hostname=config.host, port=config.port,
                        username=config.username or None, password=config.password or None,
                        use_tls=config.security == "tls",
                        start_tls=config.security == "starttls", timeout=config.timeout,
                    )  # fmt: skip
                    await client.connect()
                _, reply = await client.send_message(message)
        except Exception as exc:
            outcome = failure(exc)
            log.info("email %s not sent: %s", email.message_id, outcome.reason)
            refused = isinstance(
                exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused
            )
            if refused and client is not None and client.is_connected:
                return outcome, client  # the envelope reset: the session goes on
            if client is not None:
                client.close()
            return outcome, None
        return Outcome.sent(_redact(reply)), client


#: messages one SMTP session carries at most before the next connects
SESSION_MESSAGES = 50


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        async with asyncio.timeout(CLOSING_GRACE * 10):
            await client.quit()
    except Exception:  # the messages are sent: a failed goodbye changes nothing
        client.close()


#: what a server refusing at each step means, by the exception aiosmtplib raises
_STEPS: tuple[tuple[type[aiosmtplib.SMTPResponseException], str], ...] = (
    (aiosmtplib.SMTPSenderRefused, "sender refused"),
    (aiosmtplib.SMTPRecipientRefused, "recipient refused"),
    (aiosmtplib.SMTPDataError, "message refused"),
    (aiosmtplib.SMTPAuthenticationError, "authentication failed"),
    (aiosmtplib.SMTPConnectResponseError, "connection refused by the server"),
    (aiosmtplib.SMTPHeloError, "greeting refused"),
)


def failure(exc: BaseException) -> Outcome:
    """What an exception of an SMTP conversation means for the message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # one recipient a message: its refusal is the message's
        return min((failure(r) for r in exc.recipients), key=lambda o: o.permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        step = next((name for kind, name in _STEPS if isinstance(exc, kind)), "refused")
        reason = f"{step}: {exc.code} {_redact(exc.message)}".strip()
        return Outcome.refused(reason) if 500 <= exc.code < 600 else Outcome.retry(reason)
    if isinstance(exc, TimeoutError):
        return Outcome.retry("timed out")
    if isinstance(exc, OSError):  # refused, unreachable, dropped, a failed TLS handshake
        return Outcome.retry(f"could not connect ({type(exc).__name__})")
    if isinstance(exc, aiosmtplib.SMTPException):
        # the rest: the server lacks what the settings ask (STARTTLS, AUTH, SMTPUTF8)
        return Outcome.refused(f"not supported by the server: {_redact(str(exc))}")
    if isinstance(exc, ValueError):  # aiosmtplib: an address it cannot send safely
        return Outcome.refused(f"the message cannot be sent ({_redact(str(exc))})")
    return Outcome.retry(f"the attempt failed ({type(exc).__name__})")


_QUOTED_ADDRESS = re.compile(f"<?{ADDRESS.pattern}>?")


def _redact(text: str) -> str:
    """The server's text on one line, any address in it replaced, at most 300 characters."""
    return _QUOTED_ADDRESS.sub("<address>", " ".join(text.split()))[:300]


class MemoryEmail:
    """Keeps what it is given, built as it would be sent (development and tests)."""

    def __init__(self, sender: str = "pharmacy@example.org") -> None:
        self._sender = sender
        self.sent: list[EmailMessage] = []

    def send(self, email: Email) -> Outcome:
        try:
            self.sent.append(build_message(email, self._sender))
        except ValueError as exc:
            return Outcome.refused(str(exc))
        return Outcome.sent("kept in memory")
