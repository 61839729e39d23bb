"""Patient notifications: the channels that send them, email (:mod:`.email`, SMTP) and SMS
(:mod:`.sms`, a Twilio-style HTTP API, with its delivery-status callbacks and the patient's
keywords), each behind a small protocol with a real implementation and an in-memory one.

Each channel has one blocking entry point a Celery worker calls, and never raises for what the
other side answered: it returns an :class:`Outcome`, classified like the SCRIPT outbox's
attempts (``docs/outbound.md``): delivered, a failure that may pass (tried again with backoff),
or a permanent one (dead-lettered for an operator). What to say and when to say it are the
domain's (:mod:`eprescribe.notifications`).

The notification outbox keeps every message, rendered, with its delivery (:mod:`.models`,
:mod:`.store`); a worker sends it (:mod:`.sending`, the task ``telepharm.send_notifications``)
and the SMS provider's signed callbacks move it on (:mod:`.callbacks`). See
``docs/notifications.md``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.orm import Session

#: the Celery task that sends notifications (its argument: a list of notification IDs)
SEND_TASK = "telepharm.send_notifications"
#: the broker queue of notifications (workers consume it beside the checks and SCRIPT)
QUEUE = "telepharm.notifications"
#: where the SMS provider posts delivery statuses (no bearer token: the provider signs it)
STATUS_PATH = "/api/v1/notifications/sms/status"
#: where the SMS provider posts the texts patients send (STOP, START: signed likewise)
INBOUND_PATH = "/api/v1/notifications/sms/inbound"

#: publishes notification IDs for sending, after the commit that wrote them
Notify = Callable[[Sequence[uuid.UUID]], None]
NOTIFY: web.AppKey[Notify] = web.AppKey("notify")


class Triggers(Protocol):
    """What notifies a patient, as the stores that make the changes call it, in their unit
    of work (a blocking session): :class:`.triggers.HubTriggers`. A protocol here, so the
    stores need not import the patients' profiles (which import the stores)."""

    def ready_for_pickup(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        fill_id: uuid.UUID,
        pickup_by: dt.datetime,
        now: dt.datetime,
    ) -> uuid.UUID | None: ...

    def cancelled_by_prescriber(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        rx_id: uuid.UUID,
        now: dt.datetime,
    ) -> uuid.UUID | None: ...

    def needs_prescriber(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        rx_id: uuid.UUID,
        now: dt.datetime,
    ) -> uuid.UUID | None: ...

    def consult_scheduled(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        consult_id: uuid.UUID,
        invite_url: str,
        now: dt.datetime,
    ) -> uuid.UUID | None: ...

    def shipped(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        fill_id: uuid.UUID,
        carrier: str,
        tracking_number: str,
        tracking_url: str,
        now: dt.datetime,
    ) -> uuid.UUID | None: ...

    def payment_failed(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        attempt_id: uuid.UUID,
        amount: int,
        currency: str,
        now: dt.datetime,
    ) -> uuid.UUID | None: ...

    def prescriber_answered(
        self, session: Session, *, rx_id: uuid.UUID, now: dt.datetime
    ) -> list[uuid.UUID]: ...

    def written(self, session: Any) -> list[uuid.UUID]:
        """What the unit of work wrote (before its end), to :meth:`publish` after it."""
        ...

    def publish(self, written: Sequence[uuid.UUID]) -> None: ...


#: the hub's triggers (set by ``server.notifications.triggers.setup``)
TRIGGERS: web.AppKey[Triggers] = web.AppKey("notification_triggers")


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
