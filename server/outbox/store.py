"""The one writer of the outbox: a message written with the change that causes it, claimed
for an attempt, concluded with what the attempt found, and sent again by an operator.

The functions take a blocking :class:`~sqlalchemy.orm.Session` in the caller's unit of work
(the prescriptions store through ``AsyncSession.run_sync``, the worker directly). Audit
entries are the unit of work's last statement, as everywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from eprescribe.ncpdp import Party

from .. import audit
from ..auth.models import OAuthClient
from ..db.models import utcnow
from .models import OutboundMessage

PENDING = "pending"
SENDING = "sending"
RETRYING = "retrying"
DELIVERED = "delivered"
DEAD = "dead"
STATES = (PENDING, SENDING, RETRYING, DELIVERED, DEAD)
#: a message in one of these is finished: the next of its prescription may go
FINISHED = frozenset({DELIVERED, DEAD})
#: what the worker records its attempts as
ACTOR = audit.Actor("system", "outbox")
#: the session's info key under which :func:`enqueue` lists what to publish after the commit
_ENQUEUED = "outbox.enqueued"


def new_message_id() -> str:
    """A MessageID for a message the hub sends: 32 hex digits (an ``an`` of at most 35)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to send: what it is about, to whom, and its exact bytes."""

    pharmacy_id: uuid.UUID
    prescription_id: uuid.UUID | None
    #: the OAuth client (prescriber system) whose endpoint receives it
    client_id: str
    recipient: Party
    message_type: str
    message_id: str
    relates_to_message_id: str | None
    payload: bytes


def enqueue(session: Session, message: Outbound, now: dt.datetime | None = None) -> uuid.UUID:
    """Write ``message`` as ``pending`` in the caller's unit of work, after the prescription's
    earlier messages (the caller holds the prescription's lock, so positions never collide);
    its ID is published for delivery once the unit of work commits (:func:`enqueued`)."""
    now = now or utcnow()
    position = 1
    if message.prescription_id is not None:
        last = session.scalar(
            select(func.max(OutboundMessage.position)).where(
                OutboundMessage.prescription_id == message.prescription_id
            )
        )
        position = (last or 0) + 1
    row = OutboundMessage(
        id=uuid.uuid4(),
        prescription_id=message.prescription_id,
        position=position,
        pharmacy_id=message.pharmacy_id,
        client_id=message.client_id,
        recipient=message.recipient.text,
        message_type=message.message_type,
        message_id=message.message_id,
        relates_to_message_id=message.relates_to_message_id,
        payload=message.payload,
        sha256=hashlib.sha256(message.payload).hexdigest(),
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.info.setdefault(_ENQUEUED, []).append(row.id)
    return row.id


def dead_on_arrival(session: Session, message_id: uuid.UUID, error: str) -> None:
    """A message that could not be built: kept, with why, as ``dead`` (and not published)."""
    row = session.get(OutboundMessage, message_id)
    assert row is not None
    row.state, row.last_error = DEAD, error[:1000]
    session.info[_ENQUEUED].remove(message_id)


def enqueued(session: Any) -> list[uuid.UUID]:
    """The messages ``session``'s unit of work wrote, to publish once it has committed (a
    sync or async session: both share ``info``); forgotten once asked."""
    found: list[uuid.UUID] = session.info.pop(_ENQUEUED, [])
    return found


# -- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """One attempt at one message: what to send, where, and until when the claim holds."""

    id: uuid.UUID
    attempt: int
    message_id: str
    payload: bytes
    client_id: str
    endpoint: str | None
    #: the bearer token, sealed (``SecretBox``): opened by the deliverer
    sealed_token: str | None
    dead_after: dt.datetime


def claim(
    session: Session,
    message_id: uuid.UUID,
    now: dt.datetime,
    lease: float,
    bound: float,
    *,
    skip_locked: bool = False,
) -> Claimed | None:
    """Take ``message_id`` for an attempt, or ``None``: finished, not due, held by another
    attempt whose claim has not lapsed, or waiting behind an earlier message of its
    prescription (or, with ``skip_locked``, its row is locked by another transaction right
    now). The claim lasts ``lease`` seconds; the first attempt starts the ``bound`` (seconds)
    past which a failure is final."""
    row = session.scalar(
        select(OutboundMessage)
        .where(OutboundMessage.id == message_id)
        .with_for_update(skip_locked=skip_locked)
    )
    if row is None or row.state in FINISHED or row.next_attempt_at > now:
        return None
    if row.prescription_id is not None and _waits(session, row):
        return None
    client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == row.client_id))
    live = client is not None and client.disabled_at is None
    row.state, row.attempts = SENDING, row.attempts + 1
    row.next_attempt_at = now + dt.timedelta(seconds=lease)
    row.dead_after = row.dead_after or now + dt.timedelta(seconds=bound)
    row.updated_at = now
    return Claimed(
        row.id,
        row.attempts,
        row.message_id,
        row.payload,
        row.client_id,
        client.endpoint if live and client is not None else None,
        client.endpoint_token if live and client is not None else None,
        row.dead_after,
    )


def _waits(session: Session, row: OutboundMessage) -> bool:
    """Whether an earlier message of the same prescription is not finished yet."""
    earlier = session.scalar(
        select(func.count()).where(
            OutboundMessage.prescription_id == row.prescription_id,
            OutboundMessage.position < row.position,
            OutboundMessage.state.not_in(sorted(FINISHED)),
        )
    )
    return bool(earlier)


@dataclass(frozen=True, slots=True)
class Reply:
    """The synchronous SCRIPT reply to an attempt, as received and read."""

    transaction: str
    code: str | None
    description_code: str | None
    message_id: str | None
    raw: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    """What an attempt found: delivered, or why not, and whether that may pass."""

    delivered: bool
    error: str | None = None
    permanent: bool = False
    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class Concluded:
    """The state an attempt left its message in, and what to publish next: the message
    again at ``retry_in`` seconds, or the next message of its prescription."""

    state: str
    retry_in: float | None = None
    next_id: uuid.UUID | None = None


def conclude(
    session: Session,
    claimed: Claimed,
    attempt: Attempt,
    now: dt.datetime,
    backoff: tuple[float, float],
) -> Concluded | None:
    """Record ``attempt`` on its message; ``None`` when it no longer counts (the message
    finished meanwhile, or its claim lapsed and a later attempt holds it). A delivery always
    counts: the receiver has the message. ``backoff`` is the first and the longest wait."""
    return conclude_many(session, [(claimed, attempt)], now, backoff)[0]


def conclude_many(
    session: Session,
    attempts: Sequence[tuple[Claimed, Attempt]],
    now: dt.datetime,
    backoff: tuple[float, float],
) -> list[Concluded | None]:
    """:func:`conclude` for each of ``attempts`` (in their order; the rows locked in the
    order of their IDs, so that two workers never wait on each other in a circle), with one
    audit append for all of them, the last statement."""
    order = sorted(range(len(attempts)), key=lambda i: attempts[i][0].id)
    found: dict[int, Concluded | None] = {}
    events: list[dict[str, Any]] = []
    for i in order:
        found[i], event = _conclude(session, *attempts[i], now, backoff)
        if event is not None:
            events.append(audit.values(ACTOR, event, now))
    audit.append(session, events)
    return [found[i] for i in range(len(attempts))]


def _conclude(
    session: Session,
    claimed: Claimed,
    attempt: Attempt,
    now: dt.datetime,
    backoff: tuple[float, float],
) -> tuple[Concluded | None, audit.Event | None]:
    row = session.scalar(
        select(OutboundMessage).where(OutboundMessage.id == claimed.id).with_for_update()
    )
    if row is None or row.state in FINISHED:
        return None, None
    if not attempt.delivered and (row.state != SENDING or row.attempts != claimed.attempt):
        return None, None
    _record_reply(row, attempt.reply, now)
    row.updated_at, row.last_error = now, attempt.error
    retry_in: float | None = None
    if attempt.delivered:
        row.state, row.delivered_at = DELIVERED, now
    else:
        wait = jittered(backoff[0], backoff[1], row.attempts)
        if attempt.permanent or now + dt.timedelta(seconds=wait) > claimed.dead_after:
            row.state = DEAD
        else:
            row.state, retry_in = RETRYING, wait
            row.next_attempt_at = now + dt.timedelta(seconds=wait)
    if row.state not in FINISHED:
        return Concluded(row.state, retry_in), None
    return Concluded(row.state, None, _next_of(session, row)), _event(row)


def jittered(first: float, longest: float, attempts: int) -> float:
    """The wait after the ``attempts``-th failure: doubling from ``first`` up to ``longest``,
    then somewhere in its upper half (so receivers that failed together are not all tried
    again at once)."""
    wait = min(longest, first * 2 ** max(0, attempts - 1))
    return wait * (0.5 + secrets.randbelow(1001) / 2000)


def _record_reply(row: OutboundMessage, reply: Reply | None, now: dt.datetime) -> None:
    if reply is None:
        return
    row.reply_type, row.reply_code = reply.transaction, reply.code
    row.reply_description_code, row.reply_message_id = reply.description_code, reply.message_id
    row.reply, row.replied_at = reply.raw, now
    row.reply_inbound_message_id = None


def _next_of(session: Session, row: OutboundMessage) -> uuid.UUID | None:
    """The next unfinished message of ``row``'s prescription, which ``row`` held back."""
    if row.prescription_id is None:
        return None
    found: uuid.UUID | None = session.scalar(
        select(OutboundMessage.id)
        .where(
            OutboundMessage.prescription_id == row.prescription_id,
            OutboundMessage.position > row.position,
            OutboundMessage.state.not_in(sorted(FINISHED)),
        )
        .order_by(OutboundMessage.position)
        .limit(1)
    )
    return found


def _event(row: OutboundMessage, action: str | None = None) -> audit.Event:
    detail: dict[str, Any] = {
        "message_id": row.message_id,
        "message_type": row.message_type,
        "state": row.state,
        "attempts": row.attempts,
    }
    if row.prescription_id is not None:
        detail["prescription_id"] = str(row.prescription_id)
    if row.reply_type is not None:
        detail["reply"] = [row.reply_type, row.reply_code, row.reply_description_code]
    return audit.Event(
        action or f"outbound.{row.state}",
        "outbound_message",
        str(row.id),
        pharmacy_id=row.pharmacy_id,
        detail=detail,
    )


# -- replies that come later -------------------------------------------------------------------


def sent_to(session: Session, client_id: str, message_id: str) -> OutboundMessage | None:
    """The message with MessageID ``message_id`` sent to ``client_id``'s endpoint, locked
    (a reply from another client never matches: it cannot move a message it did not get)."""
    found: OutboundMessage | None = session.scalar(
        select(OutboundMessage)
        .where(OutboundMessage.message_id == message_id, OutboundMessage.client_id == client_id)
        .with_for_update()
    )
    return found


@dataclass(frozen=True, slots=True)
class Answered:
    """What a reply that came later did to its message: its state before and after, the
    audit entry of a change (written by the caller, last), and the next message of its
    prescription that the change lets go."""

    before: str
    state: str
    event: audit.Event | None
    next_id: uuid.UUID | None


def answered_later(
    session: Session,
    row: OutboundMessage,
    answer: Attempt,
    inbound_id: uuid.UUID,
    now: dt.datetime,
) -> Answered:
    """Record a Status, Error or Verify that relates to ``row`` and was posted to the intake
    (``inbound_id``: the message as received), and move ``row``'s state by it:

    - a yes (Status 000/010, Verify, Error 900/220): ``delivered``, whatever the state, even
      ``dead`` (the receiver has it after all, e.g. an attempt that timed out reached it);
    - an Error after ``delivered``: ``dead`` (the receiver took it, then refused it); not sent
      again by itself, since later messages of its prescription may have gone meanwhile: an
      operator decides (``telepharm outbox retry``, same bytes and MessageID);
    - before it is finished, an Error 700 or 900: ``dead``; an Error 600-602: recorded, the
      delivery's own retries go on;
    - anything else (another Status code, an Error to a ``dead`` message): recorded only.

    A message never built (no bytes) is never ``delivered``: it was never sent.
    """
    assert answer.reply is not None
    before = row.state
    _record_reply(row, answer.reply, now)
    row.reply_inbound_message_id, row.updated_at = inbound_id, now
    is_error = answer.reply.transaction == "Error"
    if answer.delivered:
        if before != DELIVERED and row.payload:
            row.state, row.delivered_at, row.last_error = DELIVERED, now, None
    elif is_error and before == DELIVERED:
        row.state, row.last_error = DEAD, f"{answer.error} after delivery"
    elif is_error and before not in FINISHED:
        row.last_error = f"{answer.error}, answered later"
        if answer.permanent:
            row.state = DEAD
    if row.state == before:
        return Answered(before, before, None, None)
    released = before not in FINISHED and row.state in FINISHED
    event = _event(row)
    event.detail["before"], event.detail["later"] = before, True
    return Answered(before, row.state, event, _next_of(session, row) if released else None)


# -- operators --------------------------------------------------------------------------------


class NotRetryable(ValueError):
    """An operator asked to send again a message that is not dead (or does not exist)."""


def retry(session: Session, message_id: uuid.UUID, actor: audit.Actor) -> OutboundMessage:
    """Send a dead message again (``dead`` → ``pending``, due now, a new bound): same bytes,
    same MessageID. Audited."""
    row = session.scalar(
        select(OutboundMessage).where(OutboundMessage.id == message_id).with_for_update()
    )
    if row is None:
        raise NotRetryable(f"no outbound message {message_id}")
    if row.state != DEAD:
        raise NotRetryable(f"outbound message {message_id} is {row.state}, not dead")
    if not row.payload:
        raise NotRetryable(f"outbound message {message_id} was never built: {row.last_error}")
    now = utcnow()
    row.state, row.next_attempt_at, row.dead_after, row.updated_at = PENDING, now, None, now
    audit.append(session, [audit.values(actor, _event(row, "outbound.retry"), now)])
    session.info.setdefault(_ENQUEUED, []).append(row.id)
    return row


def due(session: Session, before: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Unfinished messages due before ``before`` (pending or retrying), or whose claim lapsed
    then (sending): what a lost publish or a killed worker left, oldest first. One that waits
    behind an earlier message of its prescription is not due: that one's end publishes it."""
    earlier = aliased(OutboundMessage)
    waiting = (
        select(earlier.id)
        .where(
            earlier.prescription_id == OutboundMessage.prescription_id,
            earlier.position < OutboundMessage.position,
            earlier.state.not_in(sorted(FINISHED)),
        )
        .exists()
    )
    return list(
        session.scalars(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.state.in_((PENDING, RETRYING, SENDING)),
                OutboundMessage.next_attempt_at < before,
                ~waiting,
            )
            .order_by(OutboundMessage.next_attempt_at, OutboundMessage.id)
            .limit(limit)
        )
    )


def of_prescriptions(
    session: Session, prescription_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[OutboundMessage]]:
    """The messages about each prescription, in their order."""
    found: dict[uuid.UUID, list[OutboundMessage]] = {i: [] for i in prescription_ids}
    for row in session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.prescription_id.in_(prescription_ids))
        .order_by(OutboundMessage.prescription_id, OutboundMessage.position)
    ):
        assert row.prescription_id is not None
        found[row.prescription_id].append(row)
    return found
