"""Patient notifications: the channels that send them, email (:mod:`.email`, SMTP) and SMS
(:mod:`.sms`, a Twilio-style HTTP API, with its delivery-status callbacks and the patient's
keywords), each behind a small protocol with a real implementation and an in-memory one.

Each channel has one blocking entry point a Celery worker calls, and never raises for what the
other side answered: it returns an :class:`Outcome`, classified like the SCRIPT outbox's
attempts (``docs/outbound.md``): delivered, a failure that may pass (tried again with backoff),
or a permanent one (dead-lettered for an operator). What to say and when to say it are the
domain's (:mod:`eprescribe.notifications`). The outbox that keeps these messages and the tasks
that send them come next (``docs/notifications.md``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt at sending found: delivered (with the other side's reply and, for an
    SMS, the provider's id and status), or why not and whether that may pass. ``reason`` and
    ``reply`` never hold the message's content or the recipient's address."""

    delivered: bool
    reason: str | None = None
    permanent: bool = False
    reply: str | None = None
    provider_id: str | None = None
    provider_status: str | None = None

    @classmethod
    def sent(cls, reply: str, provider_id: str | None = None, status: str | None = None) -> Outcome:
        return cls(True, reply=reply, provider_id=provider_id, provider_status=status)

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        return cls(False, reason)

    @classmethod
    def refused(cls, reason: str) -> Outcome:
        return cls(False, reason, permanent=True)
