"""Group commit for the intake: messages that arrive together are stored in one transaction.

Each caller waits until the transaction holding its message has committed, so nothing is
acknowledged before it is durable. Up to ``in_flight`` transactions run at once; messages that
arrive while they do queue and go together in the next: no added delay when idle, and under
load the per-transaction cost (round trips, commit, statement set-up) is shared by the batch.
On SQLite two in flight keep the event loop busy while a commit waits for the disk; on
PostgreSQL one, a single statement, is the whole transaction (see ``__init__``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, String, Table, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from .. import audit
from ..db import Database, insert_ignoring_conflicts, json_default
from . import revisions
from .models import InboundMessage, Prescription, PrescriptionTransition

# Core statements on the tables: the ORM's bulk machinery costs more than the I/O.
MESSAGES: Table = InboundMessage.__table__  # type: ignore[assignment]
PRESCRIPTIONS: Table = Prescription.__table__  # type: ignore[assignment]
TRANSITIONS: Table = PrescriptionTransition.__table__  # type: ignore[assignment]

log = logging.getLogger(__name__)
MAX_BATCH = 200
#: seconds between attempts to find out whether a commit whose answer was lost happened
LOOK_UP_RETRY = 0.2


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """The rows one accepted message becomes, as column -> value mappings."""

    message: dict[str, Any]
    prescription: dict[str, Any]
    transition: dict[str, Any]
    audit: dict[str, Any]

    @property
    def message_id(self) -> uuid.UUID:
        found: uuid.UUID = self.message["id"]
        return found

    @property
    def prescription_id(self) -> uuid.UUID:
        found: uuid.UUID = self.prescription["id"]
        return found


class Duplicate(Exception):
    """The message's (client, sender, MessageID) is already stored."""


@dataclass(slots=True)
class _Pending:
    record: IntakeRecord
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IntakeWriter:
    def __init__(
        self,
        db: Database,
        in_flight: int | None = None,
        on_stored: Callable[[list[uuid.UUID]], None] | None = None,
        verify_for: float = 10.0,
    ) -> None:
        self._db = db
        #: how long to keep asking whether a commit whose answer was lost happened (seconds)
        self._verify_for = verify_for
        self._on_stored = on_stored
        self._queue: list[_Pending] = []
        self._drainers: set[asyncio.Task[None]] = set()
        # PostgreSQL: a batch is one statement, the whole transaction, and the next gathers
        # while it runs. SQLite: a second transaction keeps the event loop busy while a
        # commit waits for the disk.
        self._in_flight = in_flight or (1 if db.engine.dialect.name == "postgresql" else 2)
        #: PostgreSQL connections kept between batches (one per transaction in flight): a
        #: checkout from the pool costs a ping and the pool's bookkeeping every batch
        self._idle: list[AsyncConnection] = []

    async def write(self, record: IntakeRecord) -> None:
        """Return once ``record`` is committed; raise :class:`Duplicate` or the database error."""
        pending = _Pending(record)
        self._queue.append(pending)
        # a drainer that has finished but not yet left the set (its done callback runs on a
        # later turn of the loop) will not look at the queue again: count only running ones
        if sum(not drainer.done() for drainer in self._drainers) < self._in_flight:
            drainer = asyncio.create_task(self._drain())
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        await pending.done

    async def close(self) -> None:
        """Let the queued messages reach the database before the engine goes away."""
        while self._drainers:
            await asyncio.gather(*self._drainers, return_exceptions=True)
        while self._idle:
            await self._idle.pop().close()

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            stored = await self._outcome([p.record for p in batch])
        except StorageFailed as exc:
            if len(batch) > 1 and exc.row_specific:
                # one bad row must not sink its neighbours: retry each on its own
                for pending in batch:
                    await self._commit([pending])
                return
            for pending in batch:
                _settle(pending.done, exc)
            return
        except BaseException as exc:  # cancellation or a bug: no caller may wait forever
            for pending in batch:
                _settle(pending.done, exc)
            raise
        if self._on_stored is not None:
            # a test message is kept, never checked
            self._on_stored(
                [
                    p.record.prescription_id
                    for p in batch
                    if p.record.message_id in stored and not p.record.prescription.get("test")
                ]
            )
        for pending in batch:
            ok = pending.record.message_id in stored
            _settle(pending.done, None if ok else Duplicate())

    async def _outcome(self, records: list[IntakeRecord]) -> set[uuid.UUID]:
        """The messages of ``records`` stored. When the connection was lost with the commit
        under way (it may or may not have happened) the messages are looked up once the
        database answers, so the senders get the truth rather than a blind "resend"."""
        try:
            return await self._store(records)
        except StorageFailed as exc:
            if not exc.maybe_stored:
                raise
            log.warning("the intake lost its connection during a commit; looking the batch up")
            stored = await self._look_up([r.message_id for r in records])
            if not stored:
                raise StorageFailed(row_specific=False) from exc
            return stored

    async def _look_up(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``ids`` are stored, asking until the database answers or ``verify_for``
        has passed (then the outcome stays unknown: :class:`StorageFailed` ``maybe_stored``)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self._verify_for
        query = select(MESSAGES.c.id).where(MESSAGES.c.id.in_(ids))
        while True:
            try:
                async with asyncio.timeout_at(until), self._db.sessions() as session:
                    return set(await session.scalars(query))
            except (TimeoutError, *_DATABASE_ERRORS) as exc:
                if loop.time() + LOOK_UP_RETRY >= until:
                    raise StorageFailed(row_specific=False, maybe_stored=True) from exc
            await asyncio.sleep(LOOK_UP_RETRY)

    async def _store(self, records: list[IntakeRecord]) -> set[uuid.UUID]:
        """Insert the batch; duplicates are skipped by the unique constraint, not raced."""
        postgresql = self._db.engine.dialect.name == "postgresql"
        try:
            if postgresql:
                async with self._connection() as driver:
                    return await self._store_with_driver(driver, records)
            return await _store_with_core(self._db, records)
        except _DATABASE_ERRORS as exc:
            raise StorageFailed(
                row_specific=isinstance(exc, _ROW_ERRORS),
                # SQLite commits in this process: a failed commit did not happen
                maybe_stored=postgresql and not _statement_refused(exc),
            ) from exc

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """An asyncpg connection of the engine's, kept for the next batch unless it failed
        in a way that may have left it broken (anything but an error the server reported)."""
        try:
            connection = await self._kept_or_new()
        except _DATABASE_ERRORS as exc:  # no statement was sent: certainly nothing stored
            raise StorageFailed(row_specific=False) from exc
        try:
            raw = await connection.get_raw_connection()
            yield raw.driver_connection
        except asyncpg.PostgresError:
            self._idle.append(connection)  # the server answered: the connection is sound
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            raise
        self._idle.append(connection)

    async def _kept_or_new(self) -> AsyncConnection:
        """A kept connection the server has not closed meanwhile (a restart, an idle timeout:
        what the pool's ping on checkout would have caught), else one from the pool."""
        while self._idle:
            connection = self._idle.pop()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            if driver is not None and not driver.is_closed():
                return connection
            with contextlib.suppress(Exception):
                await connection.invalidate()
        return await self._db.engine.connect()

    async def _store_with_driver(self, driver: Any, records: list[IntakeRecord]) -> set[uuid.UUID]:
        """PostgreSQL: the batch in one statement, a transaction of its own: the rows (a
        prescription and its first transition only for a message that was not a duplicate)
        and the audit entries of the messages stored, chained onto the trail at the commit
        (:func:`audit.append`). SQLAlchemy's per-row parameter processing cost as much CPU
        as the rest of the write, and each round trip per batch (pool ping, BEGIN, the
        statements, COMMIT) a share of the rest (tests/benchmarks/README.md)."""
        sql, arrays = _statement(_single_statement_sql, _tables(records))
        entries = audit.append_arguments([r.audit for r in records])
        keys = [r.prescription_id for r in records]
        return {row[0] for row in await driver.fetch(sql, *arrays, *entries, keys)}


def _tables(records: list[IntakeRecord]) -> list[tuple[Table, list[dict[str, Any]]]]:
    return [
        (MESSAGES, [r.message for r in records]),
        (PRESCRIPTIONS, [r.prescription for r in records]),
        (TRANSITIONS, [r.transition for r in records]),
    ]


#: errors a single row can cause, as opposed to the database being unreachable (the driver
#: path raises asyncpg's own exceptions, the Core path SQLAlchemy's)
_ROW_ERRORS = (
    IntegrityError,
    DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
)


#: what a failed write raises: the database's own report, or the connection's failure
_DATABASE_ERRORS = (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _statement_refused(exc: BaseException) -> bool:
    """Whether the server answered the statement with an error (so it rolled back), rather
    than the connection ending before the answer (a commit may have happened)."""
    return isinstance(exc, asyncpg.PostgresError | SQLAlchemyError) and not isinstance(
        exc, asyncpg.PostgresConnectionError | asyncpg.OperatorInterventionError
    )


class StorageFailed(Exception):
    """The batch was not stored (rolled back): ``row_specific`` if a single row may be at
    fault; ``maybe_stored`` if the outcome is unknown (the connection was lost during the
    commit and the database could not be asked since)."""

    def __init__(self, *, row_specific: bool, maybe_stored: bool = False) -> None:
        super().__init__("the intake batch could not be stored")
        self.row_specific = row_specific
        self.maybe_stored = maybe_stored


async def _store_with_core(db: Database, records: list[IntakeRecord]) -> set[uuid.UUID]:
    """Portable path (SQLite): SQLAlchemy Core statements in one transaction."""
    async with db.transaction() as session:
        statement = insert_ignoring_conflicts(MESSAGES, db.engine.dialect.name)
        stored = set(
            await session.scalars(statement.returning(MESSAGES.c.id), [r.message for r in records])
        )
        fresh = [r for r in records if r.message_id in stored]
        if fresh:
            await session.execute(insert(PRESCRIPTIONS), [r.prescription for r in fresh])
            await session.execute(insert(TRANSITIONS), [r.transition for r in fresh])
            queued = [r.prescription for r in fresh if not r.prescription.get("test")]
            revisions.touch(session.sync_session, {p["pharmacy_id"] for p in queued})
            await session.run_sync(audit.append, [r.audit for r in fresh])
    return stored


Shapes = tuple[tuple[Table, tuple[str, ...]], ...]


def _statement(
    sql_for: Callable[[Shapes], str], tables: list[tuple[Table, list[dict[str, Any]]]]
) -> tuple[str, list[Any]]:
    """The statement for ``tables``' rows and its parameters: one array per column, or for a
    table with JSON columns one JSON array of its rows (see :class:`_Sources`)."""
    params: list[Any] = []
    shapes = []
    for table, rows in tables:
        columns = tuple(rows[0])
        if _json_columns(table):
            params.append(orjson.dumps(rows, default=_json_value).decode())
        else:
            params.extend([row[c] for row in rows] for c in columns)
        shapes.append((table, columns))
    return sql_for(tuple(shapes)), params


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # a subclass (asyncpg's) that orjson does not know
        return str(value)
    return json_default(value)


class _Sources:
    """Row sources with numbered parameters, for one statement: ``unnest`` of one array per
    column, or for a table with JSON columns ``json_populate_recordset`` of one JSON array of
    its rows. asyncpg encodes an array element by element (type checks, a Python call per
    JSON value); one JSON text built by orjson costs the hub a third as much for such a
    table, and PostgreSQL no more (tests/benchmarks/README.md)."""

    def __init__(self) -> None:
        self._dialect = postgresql.dialect()
        self.count = 0

    def __call__(self, table: Table, columns: tuple[str, ...]) -> str:
        if _json_columns(table):
            self.count += 1
            return f"json_populate_recordset(NULL::{table.name}, ${self.count}::json) AS u"
        arrays = []
        for name in columns:
            self.count += 1
            arrays.append(f"${self.count}::{self._unbounded(table.c[name].type)}[]")
        return f"unnest({', '.join(arrays)}) AS u({', '.join(columns)})"

    def _unbounded(self, column_type: TypeEngine[Any]) -> str:
        """The column's type without its length: a cast to VARCHAR(n) silently cuts longer
        text (a cut ``From`` made false duplicates), storing it in the column refuses it."""
        if isinstance(column_type, String) and column_type.length is not None:
            column_type = String()
        return column_type.compile(dialect=self._dialect)


def _insert(table: Table, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM"


# identifiers and types in these statements come from the hub's own table metadata; values
# travel as parameters
def _chained_inserts(shapes: Shapes, source: _Sources) -> str:
    """The CTEs ``m`` (messages stored: ``id``), ``p`` and ``t`` (prescription_id)."""
    (messages, m_cols), (prescriptions, p_cols), (transitions, t_cols) = shapes
    return (
        f"m AS ({_insert(messages, m_cols)} {source(messages, m_cols)}"  # noqa: S608
        " ON CONFLICT DO NOTHING RETURNING id),"
        f" p AS ({_insert(prescriptions, p_cols)} {source(prescriptions, p_cols)}"
        " WHERE u.inbound_message_id IN (SELECT id FROM m) RETURNING id, pharmacy_id, test),"
        f" t AS ({_insert(transitions, t_cols)} {source(transitions, t_cols)}"
        " WHERE u.prescription_id IN (SELECT id FROM p) RETURNING prescription_id)"
    )


@functools.cache
def _single_statement_sql(shapes: Shapes) -> str:
    """The rows, then the audit entries of the prescriptions stored (parameters after the
    rows' arrays: :func:`audit.append_arguments`, then the entries' prescription IDs), then
    the queue revisions counted up."""
    source = _Sources()
    inserts = _chained_inserts(shapes, source)
    entries = audit.pending_insert(source.count + 1, keyed_in="SELECT id FROM p")
    return f"WITH {inserts}, a AS ({entries}), r AS ({_COUNT_UP}) SELECT id FROM m"  # noqa: S608


#: the queue revisions of the pharmacies that received prescriptions counted up
#: (:mod:`.revisions`: a share drawn at random for each), in pharmacy-ID order; a test
#: message never enters a queue, so it changes no revision
_COUNT_UP = (
    "INSERT INTO queue_revisions (pharmacy_id, shard, revision)"  # noqa: S608 (a constant)
    f" SELECT pharmacy_id, floor(random() * {revisions.SHARDS})::smallint, 1"
    " FROM (SELECT DISTINCT pharmacy_id FROM p WHERE NOT test) d ORDER BY pharmacy_id"
    " ON CONFLICT (pharmacy_id, shard) DO UPDATE SET revision = queue_revisions.revision + 1"
)


@functools.cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
