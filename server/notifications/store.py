"""The one writer of the notification outbox: a message rendered and written with the change
that causes it, claimed for an attempt, concluded with what the attempt found, and moved by
the provider's delivery-status callbacks.

States (``Notification.state``):

- ``pending``: written, not tried yet (due at once, or when the patient's quiet hours end);
- ``sending``: a worker holds it until ``next_attempt_at`` (a worker killed mid-attempt lets
  the claim lapse, and the sweep queues it again);
- ``retrying``: an attempt failed for a reason that may pass (or no channel is configured);
  tried again at ``next_attempt_at`` (exponential backoff with jitter);
- ``sent``: the SMTP server or the SMS provider took it;
- ``delivered``: the provider says the handset has it (SMS status callback);
- ``failed``: the provider took it, then could not deliver it (SMS status callback);
- ``dead``: a permanent failure, or failing for longer than the configured bound;
- ``cancelled``: never sent: the change that made it moot came first while it was still
  ``pending`` (a prescriber who answers before "needs the prescriber" goes; :func:`cancel`).

The functions take a blocking :class:`~sqlalchemy.orm.Session` in the caller's unit of work
(async callers through ``AsyncSession.run_sync``, the worker directly). Audit entries are
the unit of work's last statement and hold no address and no message text.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from eprescribe.notifications import (
    DEFAULT_QUIET_HOURS,
    IMMEDIATE,
    EventKind,
    NotificationTemplate,
    QuietHours,
    default_template,
    render_email,
    render_sms,
    send_at,
)

from .. import audit, leases
from ..db.models import utcnow
from . import Outcome
from .models import Notification
from .sms import StatusCallback

PENDING = "pending"
SENDING = "sending"
RETRYING = "retrying"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
DEAD = "dead"
CANCELLED = "cancelled"
STATES = (PENDING, SENDING, RETRYING, SENT, DELIVERED, FAILED, DEAD, CANCELLED)
#: a message in one of these is never attempted again
FINISHED = frozenset({SENT, DELIVERED, FAILED, DEAD, CANCELLED})
#: what the worker records its attempts as, and the provider's callbacks
ACTOR = audit.Actor("system", "notifications")
PROVIDER = audit.Actor("system", "sms-provider")
#: the session's info key under which :func:`enqueue` lists what to publish after the commit
_ENQUEUED = "notifications.enqueued"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where and how a patient is reached: an email address or E.164 number, the language
    of the templates, and when not to disturb them (their time zone and quiet hours)."""

    address: str
    zone: ZoneInfo
    language: str = "en"
    quiet: QuietHours = DEFAULT_QUIET_HOURS

    def __repr__(self) -> str:  # patient data: never in a log line by accident
        return f"Recipient(language={self.language!r}, zone={self.zone.key!r})"


def enqueue(
    session: Session,
    *,
    pharmacy_id: uuid.UUID,
    patient_id: uuid.UUID | None,
    kind: EventKind | str,
    channel: Channel | str,
    recipient: Recipient,
    context: Mapping[str, str],
    template: NotificationTemplate | None = None,
    allow_drug_names: bool = False,
    now: dt.datetime | None = None,
    after: dt.timedelta | None = None,
    subject_id: uuid.UUID | None = None,
    contact_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Render ``kind`` for ``recipient`` (the pharmacy's ``template``, else the default in
    their language) and write it as ``pending`` in the caller's unit of work: due now for an
    :data:`~eprescribe.notifications.IMMEDIATE` kind, else once the patient's quiet hours
    allow; ``after`` puts it off by that long first (then the quiet hours apply). Its ID is
    published once the unit of work commits (:func:`enqueued`). ``subject_id``: what it is
    about (:func:`cancel` finds it by that); ``contact_id``: the contact point it goes to (an
    email's one-click unsubscribe link names it).
    :class:`~eprescribe.notifications.TemplateError` when it cannot be rendered (an email of
    an SMS-only kind, a value missing)."""
    kind, channel = EventKind(kind), Channel(channel)
    now = now or utcnow()
    template = template or default_template(kind, recipient.language)
    if channel is Channel.EMAIL:
        email = render_email(template, context, allow_drug_names)
        subject, body, markup = email.subject, email.text, email.html
    else:
        subject, body, markup = None, render_sms(template, context, allow_drug_names).body, None
    due = now + (after or dt.timedelta())
    if kind not in IMMEDIATE:
        due = send_at(due, recipient.zone, recipient.quiet)
    row = Notification(
        id=uuid.uuid4(),
        pharmacy_id=pharmacy_id,
        patient_id=patient_id,
        subject_id=subject_id,
        contact_id=contact_id,
        kind=kind.value,
        channel=channel.value,
        recipient=recipient.address,
        language=template.language,
        subject=subject,
        body=body,
        html=markup,
        state=PENDING,
        attempts=0,
        next_attempt_at=due,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.info.setdefault(_ENQUEUED, []).append(row.id)
    return row.id


def enqueued(session: Any) -> list[uuid.UUID]:
    """The notifications ``session``'s unit of work wrote, to publish once it has committed
    (a sync or async session: both share ``info``); forgotten once asked."""
    found: list[uuid.UUID] = session.info.pop(_ENQUEUED, [])
    return found


def pending(session: Session, kind: EventKind | str, subject_id: uuid.UUID) -> bool:
    """Whether a ``kind`` notification about ``subject_id`` waits, not tried yet."""
    found = session.scalar(
        select(Notification.id)
        .where(
            Notification.subject_id == subject_id,
            Notification.kind == EventKind(kind).value,
            Notification.state == PENDING,
        )
        .limit(1)
    )
    return found is not None


def cancel(
    session: Session, kind: EventKind | str, subject_id: uuid.UUID, now: dt.datetime
) -> list[uuid.UUID]:
    """Cancel the ``pending`` notifications of ``kind`` about ``subject_id`` in the caller's
    unit of work (the change that makes them moot): ``cancelled``, never sent. One a worker
    holds or has tried goes on (it may be with the provider already). Their IDs; not
    audited (nothing reached the patient)."""
    rows = list(
        session.scalars(
            select(Notification)
            .where(
                Notification.subject_id == subject_id,
                Notification.kind == EventKind(kind).value,
                Notification.state == PENDING,
            )
            .order_by(Notification.id)
            .with_for_update()
        )
    )
    for row in rows:
        row.state, row.updated_at = CANCELLED, now
    return [row.id for row in rows]


# -- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """One attempt at one notification: what to send, where, until when the claim holds."""

    id: uuid.UUID
    attempt: int
    channel: str
    recipient: str
    subject: str | None
    body: str
    html: str | None
    dead_after: dt.datetime
    #: the contact point (an email's one-click unsubscribe link names it)
    contact_id: uuid.UUID | None = None

    def __repr__(self) -> str:  # the address and the text stay out of logs
        return f"Claimed(id={self.id}, attempt={self.attempt}, channel={self.channel!r})"


def claim_many(
    session: Session,
    wanted: Sequence[uuid.UUID],
    now: dt.datetime,
    lease: float,
    bound: float,
    room: int,
) -> list[Claimed]:
    """Take for an attempt each of ``wanted`` that is due, then (when one of them was)
    others due now, up to ``room`` in all: ``wanted`` first, in their order
    (:func:`server.leases.claim`). A claim lasts ``lease`` seconds; the first attempt starts
    the ``bound`` (seconds) past which a failure is final."""
    n = Notification
    taken = leases.claim(
        session, n, _due_now(now), wanted, now, lease, bound, room,
        returning=(n.id, n.attempts, n.channel, n.recipient, n.subject, n.body, n.html,
                   n.dead_after, n.contact_id),
        holding=SENDING,
    )  # fmt: skip
    return [
        Claimed(
            t.id,
            t.attempts,
            t.channel,
            t.recipient,
            t.subject,
            t.body,
            t.html,
            t.dead_after,
            t.contact_id,
        )
        for t in taken
    ]


def _due_now(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Notification.state.in_((PENDING, RETRYING, SENDING)),
        Notification.next_attempt_at <= now,
    )


@dataclass(frozen=True, slots=True)
class Concluded:
    """The state an attempt left its notification in; ``retry_in``: publish it again then."""

    state: str
    retry_in: float | None = None


def conclude_many(
    session: Session,
    attempts: Sequence[tuple[Claimed, Outcome]],
    now: dt.datetime,
    backoff: tuple[float, float],
) -> list[Concluded | None]:
    """Record each of ``attempts`` on its notification (in their order): the state it
    leaves it in, or ``None`` when it no longer counts (finished meanwhile, or its claim
    lapsed and a later attempt holds it; a send always counts: the patient has it). The rows
    are read and locked in one statement, in the order of their IDs; one audit append for
    those sent or dead is the last statement."""
    rows = leases.locked(session, Notification, [claimed.id for claimed, _ in attempts])
    found: list[Concluded | None] = []
    finished: list[Notification] = []
    for claimed, outcome in attempts:
        row = rows.get(claimed.id)
        concluded = _conclude(row, claimed, outcome, now, backoff) if row else None
        found.append(concluded)
        if row is not None and concluded is not None and concluded.state in FINISHED:
            finished.append(row)
    finished.sort(key=lambda row: row.id)
    audit.append(session, [audit.values(ACTOR, _event(row), now) for row in finished])
    return found


def _conclude(
    row: Notification,
    claimed: Claimed,
    outcome: Outcome,
    now: dt.datetime,
    backoff: tuple[float, float],
) -> Concluded | None:
    if row.state in FINISHED:
        return None
    if not outcome.delivered and (row.state != SENDING or row.attempts != claimed.attempt):
        return None
    row.updated_at, row.last_error = now, outcome.reason
    if outcome.delivered:
        row.state, row.sent_at = SENT, now
        row.provider_id, row.provider_status = outcome.provider_id, outcome.provider_status
        return Concluded(SENT)
    wait = leases.jittered(backoff[0], backoff[1], row.attempts)
    if outcome.permanent or now + dt.timedelta(seconds=wait) > claimed.dead_after:
        row.state = DEAD
        return Concluded(DEAD)
    row.state, row.next_attempt_at = RETRYING, now + dt.timedelta(seconds=wait)
    return Concluded(RETRYING, wait)


def _event(row: Notification, before: str | None = None) -> audit.Event:
    detail: dict[str, Any] = {
        "kind": row.kind,
        "channel": row.channel,
        "state": row.state,
        "attempts": row.attempts,
    }
    if row.patient_id is not None:
        detail["patient_id"] = str(row.patient_id)
    if row.provider_status is not None:
        detail["provider_status"] = row.provider_status
    if row.state == DEAD and row.last_error:
        detail["error"] = row.last_error[:300]
    if before is not None:
        detail["before"] = before
    return audit.Event(
        f"notification.{row.state}",
        "notification",
        str(row.id),
        pharmacy_id=row.pharmacy_id,
        detail=detail,
    )


def due(session: Session, before: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Unfinished notifications due by ``before`` (pending or retrying), or whose claim
    lapsed then (sending): what a lost publish or a killed worker left, oldest first."""
    return list(
        session.scalars(
            select(Notification.id)
            .where(*_due_now(before))
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
    )


# -- the provider's delivery-status callbacks ---------------------------------------------------


def provider_status(session: Session, callback: StatusCallback, now: dt.datetime) -> str | None:
    """Record an SMS's status as its provider reported it (``callback``): ``delivered``
    (from any state but ``delivered``: the handset has it after all), ``failed`` (from
    ``sent``: a later ``delivered`` still wins), else the status only, while ``sent``. The
    state it is in (``None``: no such message); the same callback twice changes nothing.
    Audited when the state moves."""
    row = session.scalar(
        select(Notification)
        .where(Notification.provider_id == callback.message_sid)
        .with_for_update()
    )
    if row is None:
        return None
    before, status = row.state, callback.status[:32]
    if callback.delivered and before != DELIVERED:
        row.state, row.delivered_at, row.last_error = DELIVERED, now, None
    elif callback.failed and before == SENT:
        row.state = FAILED
        row.last_error = (
            f"{status} (error {callback.error_code[:16]})" if callback.error_code else status
        )
    elif before != SENT or row.provider_status == status:
        return before
    row.provider_status, row.updated_at = status, now
    if row.state != before:
        audit.append(session, [audit.values(PROVIDER, _event(row, before), now)])
    return row.state
