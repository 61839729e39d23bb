"""NCPDP SCRIPT intake: parse, validate, store durably, then answer (DESIGN.md "Data flow" 2).

The reply is built only after the transaction that stores the original bytes has committed.
Messages that cannot be processed are answered with ``Error`` and leave no row behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.exc import SQLAlchemyError

from eprescribe.ncpdp import (
    CancelRx,
    DuplicateMessageError,
    Message,
    NewRx,
    Party,
    PrescriberResponse,
    ReplyContext,
    ScriptRejection,
    SenderSoftware,
    UnidentifiedError,
    UnsupportedTransactionError,
    build_error,
    build_rejection,
    build_status,
    build_verify,
    parse_message,
    reply_context,
    salvage_reply_context,
    salvage_transaction,
)
from eprescribe.ncpdp.rxfillindicatorchange import RxFillIndicatorChange

from .. import audit
from ..admin.models import Pharmacy
from ..db import Database
from ..db.models import utcnow
from ..dispensing.indicators import receive_indicator_change
from ..metrics import UNOBSERVED, Observer
from ..notifications import Triggers
from ..outbox import Deliver
from ..prescriptions import cancels, responses, store
from ..prescriptions.models import InboundMessage
from ..prescriptions.replies import REPLIES, NowhereToStore, receive_reply
from ..prescriptions.writer import Duplicate, IntakeWriter, StorageFailed

log = logging.getLogger(__name__)
T = TypeVar("T")

SUPPORTED = frozenset(
    {"NewRx", "CancelRx", "RxChangeResponse", "RxRenewalResponse", "RxFillIndicatorChange"}
)
#: the answer to a Status, Error or Verify the hub could not take responsibility for: an
#: empty HTTP 200 (a Status would claim it, an Error is never sent to one, §6)
NO_ANSWER = b""
#: bodies larger than this are parsed in a worker thread so the event loop keeps serving
INLINE_PARSE_LIMIT = 64 * 1024
HUB = Party("ZZZ", "TELEPHARM-HUB")
#: Error DescriptionCode "Timeout": the hub cannot tell whether the message was stored
TIMEOUT = "008"
NOTHING_STORED = "Receiver system error; nothing was stored, resend later."
UNKNOWN_OUTCOME = (
    "Receiver system timeout; the message may have been stored. Resend it unchanged: a stored"
    " message is acknowledged again, one not stored is stored then."
)


@dataclass(frozen=True, slots=True)
class Sender:
    """The authenticated system that posted the message."""

    client_id: str
    ip: str | None


class Detached:
    """Reads the intake may stop waiting for at its deadline: they run to their end here,
    since cancelling one mid-query holds the reply while its connection is torn down."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # seen: its waiter (if it still waits) has it raised

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


class PharmacyDirectory:
    """Receiving pharmacies by NCPDPID, remembered for a short time (only those that exist,
    so a pharmacy added with the CLI is reachable at once)."""

    def __init__(self, db: Database, ttl: float, detached: Detached) -> None:
        self._db = db
        self._ttl = ttl
        self._detached = detached
        self._known: dict[str, tuple[uuid.UUID, float]] = {}

    async def lookup(self, ncpdpid: str) -> uuid.UUID | None:
        hit = self._known.get(ncpdpid)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        found = await self._detached.run(self._read(ncpdpid))
        if found is not None:
            self._known[ncpdpid] = (found, time.monotonic() + self._ttl)
        return found

    async def _read(self, ncpdpid: str) -> uuid.UUID | None:
        async with self._db.sessions() as session:
            return await session.scalar(select(Pharmacy.id).where(Pharmacy.ncpdpid == ncpdpid))


class Answer(NamedTuple):
    """The SCRIPT reply to a message, and what the metrics count it as."""

    reply: bytes
    transaction: str
    outcome: str
    code: str


class IntakeService:
    def __init__(
        self,
        db: Database,
        software: SenderSoftware,
        pharmacy_ttl: float,
        on_stored: Callable[[list[uuid.UUID]], None] | None = None,
        store_timeout: float = 10.0,
        deliver: Deliver | None = None,
        notify: Triggers | None = None,
        observer: Observer = UNOBSERVED,
    ) -> None:
        self._db = db
        #: the metrics: each answer, its outcome and how long it took
        self._observer = observer
        #: the patient's notifications (a prescriber's cancellation)
        self._notify = notify
        self._writer = IntakeWriter(db, on_stored=on_stored, verify_for=store_timeout)
        #: a cancel changes its patient's picture: what that made stale is checked again
        self._recheck = on_stored
        #: where the answers the intake owes prescribers go (CancelRxResponse)
        self._deliver = deliver
        self._software = software
        self._store_timeout = store_timeout
        self._detached = Detached()
        self.pharmacies = PharmacyDirectory(db, pharmacy_ttl, self._detached)

    async def receive(self, raw: bytes, sender: Sender) -> bytes:
        """Answer one posted SCRIPT message with a SCRIPT reply; never raises."""
        started = time.perf_counter()
        answer = await self._answer(raw, sender)
        self._observer.intake(
            answer.transaction, answer.outcome, answer.code, time.perf_counter() - started
        )
        return answer.reply

    async def _answer(self, raw: bytes, sender: Sender) -> Answer:
        try:
            message = await self._parse(raw)
        except ScriptRejection as rejection:
            code = rejection.description_code
            if salvage_transaction(raw) in REPLIES:
                log.info("an unreadable reply (%s): not answered", code)
                return Answer(NO_ANSWER, "unknown", "unanswered", code)
            ctx = salvage_reply_context(
                raw, fallback_to=Party("ZZZ", sender.client_id), fallback_from=HUB
            )
            log.info("script rejected before parsing: %s", code)
            return Answer(self._rejection(ctx, rejection), "unknown", "rejected", code)
        transaction = message.transaction
        if transaction in REPLIES:
            reply = await self._reply(message, raw, sender)
            return Answer(reply, transaction, "accepted" if reply else "unanswered", "000")
        ctx = reply_context(message.header)
        try:
            # the sender must hear back before it gives up: a stalled database is answered
            # (outcome unknown), while the write itself goes on and a resend learns its outcome
            async with asyncio.timeout(self._store_timeout):
                await self._accept(message, raw, sender)
        except ScriptRejection as rejection:
            code = rejection.description_code
            log.info("script %s rejected: %s", transaction, code)
            return Answer(self._rejection(ctx, rejection), transaction, "rejected", code)
        except StorageFailed as failure:
            log.error("script intake could not store a message", exc_info=failure)
            reply = self._system_error(ctx, unknown=failure.maybe_stored)
            return Answer(reply, transaction, "failed", "602")
        except TimeoutError:
            log.warning("script intake did not hear from the database in time")
            return Answer(self._system_error(ctx, unknown=True), transaction, "failed", "602")
        if _wants_receipt(message):
            verify = build_verify(
                ctx, message_id=_new_id(), sent_time=utcnow(), software=self._software
            )
            return Answer(verify, transaction, "accepted", "010")
        status = build_status(
            ctx, message_id=_new_id(), sent_time=utcnow(), software=self._software
        )
        return Answer(status, transaction, "accepted", "000")

    async def close(self) -> None:
        await self._writer.close()
        await self._detached.close()

    async def _reply(self, message: Message, raw: bytes, sender: Sender) -> bytes:
        """A Status, Error or Verify, which the hub never answers with an Error (§6): Status
        000 once it is stored (now, or before with the same bytes), whether or not it relates
        to a message the hub sent; :data:`NO_ANSWER` when it could not be stored (it names
        nothing here, it reuses a MessageID with other bytes, the database failed)."""
        try:
            ctx = reply_context(message.header)
            async with asyncio.timeout(self._store_timeout):
                await self._store_reply(message, raw, sender)
        except (NowhereToStore, DuplicateMessageError) as refused:
            log.info("a %s was not stored (%s): not answered", message.transaction, refused)
            return NO_ANSWER
        except (TimeoutError, SQLAlchemyError, OSError, StorageFailed):
            log.exception("a %s could not be stored: not answered", message.transaction)
            return NO_ANSWER
        except ValueError:  # nothing a Status could echo
            log.info("a %s a Status cannot answer: not answered", message.transaction)
            return NO_ANSWER
        return build_status(ctx, message_id=_new_id(), sent_time=utcnow(), software=self._software)

    async def _store_reply(self, message: Message, raw: bytes, sender: Sender) -> None:
        pharmacy_id = await self._pharmacy_of(message.header.to)
        actor = audit.Actor("client", sender.client_id, pharmacy_id, sender.ip)
        try:
            await receive_reply(self._db, message, raw, actor, pharmacy_id, self._deliver)
        except Duplicate:
            await self._resent(message, raw, sender.client_id)

    async def _parse(self, raw: bytes) -> Message:
        if len(raw) > INLINE_PARSE_LIMIT:
            return await asyncio.to_thread(parse_message, raw)
        return parse_message(raw)

    def _system_error(self, ctx: ReplyContext, *, unknown: bool) -> bytes:
        """Error 602, saying "resend" only where that is safe to act on: after an unknown
        outcome (DescriptionCode 008, timeout) a resend is answered with the first outcome."""
        return build_error(
            ctx,
            message_id=_new_id(),
            sent_time=utcnow(),
            software=self._software,
            code="602",
            description_code=TIMEOUT if unknown else None,
            description=UNKNOWN_OUTCOME if unknown else NOTHING_STORED,
        )

    def _rejection(self, ctx: ReplyContext, rejection: ScriptRejection) -> bytes:
        return build_rejection(
            ctx, rejection, message_id=_new_id(), sent_time=utcnow(), software=self._software
        )

    async def _accept(self, message: Message, raw: bytes, sender: Sender) -> None:
        body = message.body
        if message.transaction not in SUPPORTED or not isinstance(
            body, NewRx | CancelRx | PrescriberResponse | RxFillIndicatorChange
        ):
            raise UnsupportedTransactionError(
                f"{message.transaction} is not supported by this receiver",
                f"/Message/Body/{message.transaction}",
            )
        pharmacy_id = await self._pharmacy_of(message.header.to)
        if pharmacy_id is None:
            raise UnidentifiedError("Receiving pharmacy is not on this hub", "/Message/Header/To")
        if isinstance(body, CancelRx):
            await self._store_cancel(message, body, raw, sender, pharmacy_id)
        elif isinstance(body, RxFillIndicatorChange):
            await self._store_fill_indicator(message, body, raw, sender, pharmacy_id)
        elif isinstance(body, PrescriberResponse):
            await self._store_response(message, body, raw, sender, pharmacy_id)
        else:
            await self._store_newrx(message, body, raw, sender, pharmacy_id)

    async def _pharmacy_of(self, to: Party) -> uuid.UUID | None:
        # the Qualifier is optional: a To without one names the pharmacy by its NCPDPID too
        return await self.pharmacies.lookup(to.value) if to.qualifier in ("P", None) else None

    async def _store_newrx(
        self, message: Message, newrx: NewRx, raw: bytes, sender: Sender, pharmacy_id: uuid.UUID
    ) -> None:
        actor = audit.Actor("client", sender.client_id, pharmacy_id, sender.ip)
        record = store.intake_record(message, newrx, raw, actor, pharmacy_id, utcnow())
        try:
            await self._writer.write(record)
        except Duplicate:
            await self._resent(message, raw, sender.client_id)

    async def _store_cancel(
        self, message: Message, body: CancelRx, raw: bytes, sender: Sender, pharmacy_id: uuid.UUID
    ) -> None:
        """Store the CancelRx and decide it at once (the prescriber's answer follows as a
        CancelRxResponse); a resend of one stored is acknowledged again, decided once."""
        actor = audit.Actor("client", sender.client_id, pharmacy_id, sender.ip)
        try:
            await cancels.receive_cancel(
                self._db, message, body, raw, actor, pharmacy_id, self._recheck, self._deliver,
                self._notify,
            )  # fmt: skip
        except Duplicate:
            await self._resent(message, raw, sender.client_id)
        except (SQLAlchemyError, OSError) as exc:
            raise _not_stored(exc) from exc

    async def _store_fill_indicator(
        self,
        message: Message,
        body: RxFillIndicatorChange,
        raw: bytes,
        sender: Sender,
        pharmacy_id: uuid.UUID,
    ) -> None:
        """Store the prescriber's RxFillIndicatorChange and apply it at once; a resend is
        acknowledged again, applied once."""
        actor = audit.Actor("client", sender.client_id, pharmacy_id, sender.ip)
        try:
            await receive_indicator_change(self._db, message, body, raw, actor, pharmacy_id)
        except Duplicate:
            await self._resent(message, raw, sender.client_id)
        except (SQLAlchemyError, OSError) as exc:
            raise _not_stored(exc) from exc

    async def _store_response(
        self,
        message: Message,
        body: PrescriberResponse,
        raw: bytes,
        sender: Sender,
        pharmacy_id: uuid.UUID,
    ) -> None:
        """Store a prescriber's answer to the hub's request and apply it at once (a new
        prescription it makes is queued for the checks); a resend is acknowledged again."""
        actor = audit.Actor("client", sender.client_id, pharmacy_id, sender.ip)
        try:
            await responses.receive_response(
                self._db, message, body, raw, actor, pharmacy_id, self._recheck, self._notify
            )
        except Duplicate:
            await self._resent(message, raw, sender.client_id)
        except (SQLAlchemyError, OSError) as exc:
            raise _not_stored(exc) from exc

    async def _resent(self, message: Message, raw: bytes, client_id: str) -> None:
        """A duplicate (client, From, MessageID): acknowledged again when the stored message
        has the same bytes (its acknowledgement was lost), else refused as a duplicate
        (looked up only for a duplicate: the usual path pays nothing)."""
        header = message.header
        query = select(InboundMessage.sha256).where(
            InboundMessage.sender_client_id == client_id,
            InboundMessage.sender == header.from_.text,
            InboundMessage.message_id == header.message_id,
        )
        if await self._detached.run(self._scalar(query)) != hashlib.sha256(raw).hexdigest():
            raise DuplicateMessageError(
                "Duplicate MessageID from this sender", "/Message/Header/MessageID"
            )
        log.info("identical resend of a stored %s acknowledged again", message.transaction)

    async def _scalar(self, query: Select[str]) -> str | None:
        async with self._db.sessions() as session:
            return await session.scalar(query)


def _not_stored(exc: BaseException) -> StorageFailed:
    """A unit of work the database failed (Error 602 / 008 for the sender, never a 500): its
    commit may have gone through before the connection broke, so the sender is told to resend
    unchanged, which an identical resend makes safe (it is acknowledged, decided once)."""
    log.warning("a SCRIPT unit of work failed in the database (%s)", type(exc).__name__)
    return StorageFailed(row_specific=False, maybe_stored=True)


def _wants_receipt(message: Message) -> bool:
    return isinstance(message.body, NewRx) and bool(message.body.return_receipt)


def _new_id() -> str:
    return uuid.uuid4().hex
