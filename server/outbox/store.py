"""The one writer of the outbox: a message written with the change that causes it, claimed
for an attempt, concluded with what the attempt found, and sent again by an operator.

The functions take a blocking :class:`~sqlalchemy.orm.Session` in the caller's unit of work
(the prescriptions store through ``AsyncSession.run_sync``, the worker directly). Audit
entries are the unit of work's last statement, as everywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, defer

from eprescribe.ncpdp import Party

from .. import audit, leases
from ..auth.models import OAuthClient
from ..db.models import utcnow
from ..leases import jittered
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


def claim_many(
    session: Session,
    wanted: Sequence[uuid.UUID],
    now: dt.datetime,
    lease: float,
    bound: float,
    room: int,
) -> list[Claimed]:
    """Take for an attempt each of ``wanted`` that is due and first in its prescription's
    line, then (when one of them was) others due now, up to ``room`` in all: ``wanted``
    first, in their order (:func:`server.leases.claim`). Not taken: a message finished, not
    due, held by an attempt whose claim has not lapsed, or waiting behind an earlier message
    of its prescription. A claim lasts ``lease`` seconds; the first attempt starts the
    ``bound`` (seconds) past which a failure is final."""
    taken = _claim(session, wanted, now, lease, bound, room)
    if not taken:
        return []
    clients = {
        client_id: (endpoint, token)
        for client_id, endpoint, token in session.execute(
            select(OAuthClient.client_id, OAuthClient.endpoint, OAuthClient.endpoint_token).where(
                OAuthClient.client_id.in_({t.client_id for t in taken}),
                OAuthClient.disabled_at.is_(None),
            )
        )
    }
    return [
        Claimed(t.id, t.attempts, t.message_id, t.payload, t.client_id,
                *clients.get(t.client_id, (None, None)), t.dead_after)
        for t in taken
    ]  # fmt: skip


def _due_now(now: Any) -> tuple[ColumnElement[bool], ...]:
    """Unfinished, due (pending or retrying) or its claim lapsed (sending), and not waiting
    behind an earlier unfinished message of its prescription (``now``: a time, or the
    parameter that binds it)."""
    m = OutboundMessage.__table__.c
    earlier = OutboundMessage.__table__.alias("earlier").c
    waiting = (
        select(earlier.id)
        .where(
            earlier.prescription_id == m.prescription_id,
            earlier.position < m.position,
            earlier.state.not_in(sorted(FINISHED)),
        )
        .exists()
    )
    return (m.state.in_((PENDING, RETRYING, SENDING)), m.next_attempt_at <= now, ~waiting)


#: the claim's statements, built once (:class:`server.leases.Claim`)
_claim = leases.Claim(
    OutboundMessage,
    _due_now,
    returning=(OutboundMessage.id, OutboundMessage.attempts, OutboundMessage.message_id,
               OutboundMessage.payload, OutboundMessage.client_id, OutboundMessage.dead_after),
    holding=SENDING,
)  # fmt: skip


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


def conclude_many(
    session: Session,
    attempts: Sequence[tuple[Claimed, Attempt]],
    now: dt.datetime,
    backoff: tuple[float, float],
) -> list[Concluded | None]:
    """Record each of ``attempts`` on its message (in their order): the state it leaves the
    message in and what to publish next, or ``None`` when it no longer counts (the message
    finished meanwhile, or its claim lapsed and a later attempt holds it; a delivery always
    counts: the receiver has the message). ``backoff`` is the first and the longest wait.
    The rows are read and locked in one statement (in the order of their IDs, so that two
    workers never wait on each other in a circle), the messages they let go found in one,
    and one audit append for all of them is the last statement."""
    rows = leases.locked(session, OutboundMessage, [claimed.id for claimed, _ in attempts], _UNREAD)
    found: list[Concluded | None] = []
    finished: list[OutboundMessage] = []
    for claimed, attempt in attempts:
        row = rows.get(claimed.id)
        concluded = _conclude(row, claimed, attempt, now, backoff) if row else None
        found.append(concluded)
        if row is not None and concluded is not None and concluded.state in FINISHED:
            finished.append(row)
    let_go = _next_of(session, finished)
    events = [audit.values(ACTOR, _event(row), now) for row in sorted(finished, key=_by_id)]
    audit.append(session, events)
    return [
        replace(c, next_id=let_go.get(claimed.id)) if c is not None else None
        for (claimed, _), c in zip(attempts, found, strict=True)
    ]


#: what a conclusion does not read: the bytes sent, and the last reply's (written, not read)
_UNREAD = (defer(OutboundMessage.payload), defer(OutboundMessage.reply))


def _by_id(row: OutboundMessage) -> uuid.UUID:
    return row.id


def _conclude(
    row: OutboundMessage,
    claimed: Claimed,
    attempt: Attempt,
    now: dt.datetime,
    backoff: tuple[float, float],
) -> Concluded | None:
    if row.state in FINISHED:
        return None
    if not attempt.delivered and (row.state != SENDING or row.attempts != claimed.attempt):
        return None
    _record_reply(row, attempt.reply, now)
    row.updated_at, row.last_error = now, attempt.error
    if attempt.delivered:
        row.state, row.delivered_at = DELIVERED, now
        return Concluded(DELIVERED)
    wait = jittered(backoff[0], backoff[1], row.attempts)
    if attempt.permanent or now + dt.timedelta(seconds=wait) > claimed.dead_after:
        row.state = DEAD
        return Concluded(DEAD)
    row.state, row.next_attempt_at = RETRYING, now + dt.timedelta(seconds=wait)
    return Concluded(RETRYING, wait)


def _record_reply(row: OutboundMessage, reply: Reply | None, now: dt.datetime) -> None:
    if reply is None:
        return
    row.reply_type, row.reply_code = reply.transaction, reply.code
    row.reply_description_code, row.reply_message_id = reply.description_code, reply.message_id
    row.reply, row.replied_at = reply.raw, now
    row.reply_inbound_message_id = None


def _next_of(session: Session, rows: Sequence[OutboundMessage]) -> dict[uuid.UUID, uuid.UUID]:
    """The next unfinished message of each of ``rows``' prescriptions, which it held back,
    by the ID of the row (those with none: absent)."""
    prescriptions = {row.prescription_id for row in rows if row.prescription_id is not None}
    if not prescriptions:
        return {}
    waiting: dict[uuid.UUID | None, list[tuple[int, uuid.UUID]]] = {}
    for prescription_id, position, message_id in session.execute(
        select(OutboundMessage.prescription_id, OutboundMessage.position, OutboundMessage.id)
        .where(
            OutboundMessage.prescription_id.in_(prescriptions),
            OutboundMessage.state.not_in(sorted(FINISHED)),
        )
        .order_by(OutboundMessage.position)
    ):
        waiting.setdefault(prescription_id, []).append((position, message_id))
    found: dict[uuid.UUID, uuid.UUID] = {}
    for row in rows:
        later = [m for p, m in waiting.get(row.prescription_id, ()) if p > row.position]
        if later:
            found[row.id] = later[0]
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
    return Answered(
        before, row.state, event, _next_of(session, [row]).get(row.id) if released else None
    )


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
    """Unfinished messages due by ``before`` (pending or retrying), or whose claim lapsed
    then (sending): what a lost publish or a killed worker left, oldest first. One that waits
    behind an earlier message of its prescription is not due: that one's end publishes it."""
    return list(
        session.scalars(
            select(OutboundMessage.id)
            .where(*_due_now(before))
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
