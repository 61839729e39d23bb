"""Sending notifications, in a worker: claim, send, conclude (as the SCRIPT outbox delivers,
``server/outbox/delivery.py``).

1. claim (a short unit of work): each notification, if due, is ``sending`` until its claim
   lapses (every send of the batch taking its whole timeout, and a margin);
2. each sent through its channel, one after the other: email over SMTP (one
   :class:`~.email.SmtpEmail` per worker process), SMS through the provider's API
   (:class:`~.sms.TwilioSms`, asking for status callbacks at the hub's public URL);
3. conclude (a short unit of work): each state moved, one audit append for the batch.

A channel that is not configured leaves its messages ``retrying`` with a ``last_error`` that
says so, until the bound dead-letters them: configuring it in time sends them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from ..auth.credentials import load_key
from ..db import sync_engine
from ..db.models import utcnow
from ..patients.unsubscribe import KEY_FILE, unsubscribe_url
from ..settings import Settings
from . import STATUS_PATH, Outcome, store
from .email import Email, EmailChannel, SmtpEmail, message_id
from .sms import Sms, SmsProvider, TwilioSms
from .store import Channel, Claimed

log = logging.getLogger(__name__)
#: how long a claim outlives its sends' timeouts (the conclusion)
CLAIM_MARGIN = 30.0
#: the most notifications one attempt takes: its task's, then others that are due
BATCH = 16
NO_EMAIL = "no email channel configured (TELEPHARM_SMTP_HOST)"
NO_SMS = "no SMS channel configured (TELEPHARM_SMS_ACCOUNT_SID)"
#: a contact point's one-click unsubscribe URL (https), from its ID
Unsubscribe = Callable[[uuid.UUID], str]


@dataclass(frozen=True, slots=True)
class Next:
    """A notification to publish again after ``countdown`` seconds."""

    id: uuid.UUID
    countdown: float


class Sender:
    """Sends notifications on a blocking engine (a worker process's) through its channels
    (``None``: not configured)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        email: EmailChannel | None,
        sms: SmsProvider | None,
        unsubscribe: Unsubscribe | None = None,
    ) -> None:
        self._sessions = sessions
        #: an email to a contact point carries its link as ``List-Unsubscribe`` (none: no header)
        self._unsubscribe = unsubscribe
        self._settings = settings
        self._email = email
        self._sms = sms
        self._domain = _message_domain(settings)
        self._callback = settings.issuer.rstrip("/") + STATUS_PATH

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        engine = sync_engine(settings.sync_database_url)
        email = SmtpEmail.from_settings(settings) if settings.smtp_host else None
        sms = TwilioSms.from_settings(settings) if settings.sms_account_sid else None
        return cls(sessions=sessionmaker(engine, expire_on_commit=False), settings=settings,
                   email=email, sms=sms, unsubscribe=unsubscribe_links(settings))  # fmt: skip

    def close(self) -> None:
        for channel in (self._email, self._sms):
            close = getattr(channel, "close", None)
            if close is not None:
                close()
        engine = self._sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def send_many(self, ids: list[uuid.UUID]) -> list[Next]:
        """One attempt at each of ``ids`` that is due (the others: nothing, idempotent), and
        at others due now, up to :data:`BATCH` in all; the retries to publish."""
        settings = self._settings
        wanted = list(dict.fromkeys(ids))
        room = max(BATCH, len(wanted))
        lease = max(settings.smtp_timeout, settings.sms_timeout) * room + CLAIM_MARGIN
        with self._sessions.begin() as session:
            claimed = store.claim_many(
                session, wanted, utcnow(), lease, settings.outbox_dead_after, room
            )
        if not claimed:
            return []
        attempts = self._attempts(claimed)
        backoff = (settings.outbox_retry_first, settings.outbox_retry_max)
        with self._sessions.begin() as session:
            concluded = store.conclude_many(session, attempts, utcnow(), backoff)
        follow: list[Next] = []
        for c, outcome in zip(claimed, concluded, strict=True):
            log.info("notification %s attempt %d: %s", c.id, c.attempt,
                     outcome.state if outcome else "superseded")  # fmt: skip
            if outcome is not None and outcome.retry_in is not None:
                follow.append(Next(c.id, outcome.retry_in))
        return follow

    def _attempts(self, claimed: Sequence[Claimed]) -> list[tuple[Claimed, Outcome]]:
        """An attempt at each: the emails over one SMTP session when the channel can
        (``send_many``), the rest one by one."""
        batch: Callable[[list[Email]], list[Outcome]] | None = getattr(
            self._email, "send_many", None
        )
        emails = [c for c in claimed if c.channel == Channel.EMAIL] if batch else []
        done: dict[uuid.UUID, Outcome] = {}
        if emails and batch is not None:
            try:
                outcomes = batch([self._email_of(c) for c in emails])
            except Exception as exc:  # whatever else breaks: a failed attempt of each
                outcomes = [Outcome.retry(f"the attempt failed ({type(exc).__name__})")] * len(
                    emails
                )
            done = {c.id: o for c, o in zip(emails, outcomes, strict=True)}
        return [(c, done[c.id] if c.id in done else self._attempt(c)) for c in claimed]

    def _attempt(self, claimed: Claimed) -> Outcome:
        try:
            if claimed.channel == Channel.EMAIL:
                return self._send_email(claimed)
            return self._send_sms(claimed)
        except Exception as exc:
            # whatever else breaks: a failed attempt of this one, never the batch's conclusion
            return Outcome.retry(f"the attempt failed ({type(exc).__name__})")

    def _send_email(self, claimed: Claimed) -> Outcome:
        if self._email is None:
            return Outcome.retry(NO_EMAIL)
        return self._email.send(self._email_of(claimed))

    def _email_of(self, claimed: Claimed) -> Email:
        return Email(
            to=claimed.recipient,
            subject=claimed.subject or "",
            text=claimed.body,
            html=claimed.html,
            message_id=message_id(str(claimed.id), self._domain),
            unsubscribe_url=self._link(claimed),
        )

    def _link(self, claimed: Claimed) -> str | None:
        if self._unsubscribe is None or claimed.contact_id is None:
            return None
        return self._unsubscribe(claimed.contact_id)

    def _send_sms(self, claimed: Claimed) -> Outcome:
        if self._sms is None:
            return Outcome.retry(NO_SMS)
        return self._sms.send(Sms(claimed.recipient, claimed.body, str(claimed.id), self._callback))


def unsubscribe_links(settings: Settings) -> Unsubscribe | None:
    """The hub's unsubscribe links (``server.patients.unsubscribe``), under the key the hub
    checks them with; none when the public base URL is not https (RFC 8058 requires it: a
    development hub on http sends its emails without the header)."""
    if urlsplit(settings.issuer).scheme != "https":
        return None
    key = load_key(settings.keys_dir / KEY_FILE)
    return lambda contact_id: unsubscribe_url(settings.issuer, key, contact_id)


def _message_domain(settings: Settings) -> str:
    """The domain of the From address (a Message-ID's right-hand side), else the hub's."""
    _, address = parseaddr(settings.mail_from)
    if "@" in address:
        return address.rsplit("@", 1)[1]
    return urlsplit(settings.issuer).hostname or "localhost"
