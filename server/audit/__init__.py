"""The audit trail: who did what to which record, when, from where, with what outcome.

Entries reference records by type and ID and never carry patient data or secrets. They are
written in the same transaction as the change they record (``add``) or on their own
(``record``) for events that change nothing, such as a token request.

The trail is append-only and hash-chained: entry *n* carries ``seq`` = *n*, the hash of entry
*n-1* and its own hash, SHA-256 over that previous hash and a canonical JSON form of the entry.
The chain head (``audit_chain``, one row) holds the last ``seq`` and hash; a transaction that
appends locks it, so positions follow commit order and two writers never fork the chain.
Appending is the last thing a transaction does (the head is the last lock it takes), which
keeps lock order the same everywhere. :func:`verify` walks the chain: an edited entry breaks
its own hash, a deleted one breaks the sequence or the head.

A refusal changes nothing but is audited too: inside :func:`refusable`'s unit of work,
:func:`refuse` records it as the transaction's last statement, the transaction commits, and
the refusal is raised after the commit (raised inside, it would roll its entry back).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, Protocol, TypeVar

import orjson
from sqlalchemy import Connection, RowMapping, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ..commands import CliError, Commands, group, with_database
from ..db import Database, json_default, json_dumps
from ..db.models import utcnow
from ..settings import Settings
from .models import AuditChain, AuditEvent, AuditPending

#: the "previous hash" of the first entry
GENESIS = "0" * 64
HEAD_ID = 1
#: the ``audit_chain`` row of the retention checkpoint: the last entry pruned (its ``seq`` and
#: hash); absent until ``telepharm retention`` first removes entries. Only entries at or below
#: it, and older than the legal minimum, may be deleted (migration 0039), and an entry above it
#: must attest it: a successful :data:`CHECKPOINT_ACTION` of :data:`RETENTION`, detail
#: ``audit.through_seq`` and ``audit.through_hash``.
CHECKPOINT_ID = 2
CHECKPOINT_ACTION = "retention.run"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user or an OAuth client, with the pharmacy it belongs to, and from where."""

    kind: str  # "client", "user" or "system"
    id: str
    pharmacy_id: uuid.UUID | None = None
    ip: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


SYSTEM = Actor("system", "hub")
#: ``telepharm retention``, the one actor whose entries attest the checkpoint
RETENTION = Actor("operator", "retention")


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    resource_type: str
    resource_id: str | None = None
    outcome: str = "success"
    pharmacy_id: uuid.UUID | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def values(actor: Actor, event: Event, at: dt.datetime | None = None) -> dict[str, Any]:
    """The audit row for ``event``, for callers that insert it themselves (in bulk)."""
    return {
        "at": at or utcnow(),
        "actor": str(actor)[:100],
        "pharmacy_id": event.pharmacy_id or actor.pharmacy_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "ip": actor.ip,
        "detail": event.detail,
    }


async def add(session: AsyncSession, actor: Actor, event: Event) -> None:
    """Record ``event`` inside the caller's transaction (as its last statement)."""
    await session.run_sync(append, [values(actor, event)])


def append(session: Session | Connection, rows: list[dict[str, Any]]) -> None:
    """Chain ``rows`` (from :func:`values`) onto the trail inside the caller's transaction.

    On PostgreSQL the rows go to ``audit_pending`` without any lock, and are chained at the
    commit by the deferred trigger ``audit_flush`` (migration 0023), which holds the chain's
    head only inside the commit. Locked by the writer itself, the head was held across its
    round trips (lock, insert, move the head, commit), each waiting for a busy event loop,
    and every audited writer queued behind the slowest (tests/benchmarks/README.md,
    outbound.py). SQLite has one writer at a time: the head is read, the rows sealed here,
    inserted, and the head moved.
    """
    if not rows:
        return
    connection = session.connection() if isinstance(session, Session) else session
    if connection.dialect.name == "postgresql":
        numbered = connection.dialect.paramstyle == "numeric_dollar"  # asyncpg, else psycopg
        sql = PENDING_SQL if numbered else _PENDING_SQL_FORMAT
        connection.exec_driver_sql(sql, tuple(append_arguments(rows)))
        return
    head = session.execute(
        select(AuditChain.seq, AuditChain.hash).where(AuditChain.id == HEAD_ID).with_for_update()
    ).one()
    seq, last = seal((head.seq, head.hash), rows)
    session.execute(insert(AuditEvent), rows)
    session.execute(update(AuditChain).where(AuditChain.id == HEAD_ID).values(seq=seq, hash=last))


#: the columns of an entry the caller gives, and their types, in parameter order after the
#: tails (see :func:`append_arguments`)
_GIVEN = (
    ("at", "timestamptz"),
    ("actor", "text"),
    ("pharmacy_id", "uuid"),
    ("action", "text"),
    ("resource_type", "text"),
    ("resource_id", "text"),
    ("outcome", "text"),
    ("ip", "text"),
    ("detail", "text"),
)


def pending_insert(first: int = 1, *, keyed_in: str | None = None) -> str:
    """PostgreSQL: the INSERT of entries into ``audit_pending`` from the parameters numbered
    from ``first`` (:func:`append_arguments`), the first row flagged for the commit's flush.
    With ``keyed_in`` (a subquery), one more parameter, a uuid[] of a key per entry, and
    only the entries whose key it returns are written (the intake: only the messages
    stored, not the duplicates)."""
    given = ["tail", *(name for name, _ in _GIVEN)]
    arrays = [f"${first + i}::{kind}[]" for i, kind in enumerate(["bytea", *dict(_GIVEN).values()])]
    values = ", ".join("e.detail::jsonb" if n == "detail" else f"e.{n}" for n in given)
    names, where = given, ""
    if keyed_in is not None:
        arrays.append(f"${first + len(given)}::uuid[]")
        names, where = [*given, "key"], f" WHERE e.key IN ({keyed_in})"
    columns = ", ".join(name for name, _ in _GIVEN)
    return (
        f"INSERT INTO audit_pending (tail, {columns}, flush)"  # noqa: S608 (no value in it)
        f" SELECT {values}, row_number() OVER (ORDER BY e.n) = 1"
        f" FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS e({', '.join(names)}, n){where}"
    )


PENDING_SQL = pending_insert()
#: :data:`PENDING_SQL` for drivers whose placeholders are ``%s`` (psycopg, the worker's)
_PENDING_SQL_FORMAT = re.sub(r"\$\d+", "%s", PENDING_SQL)


def append_arguments(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """:func:`pending_insert`'s parameters for ``rows`` (from :func:`values`): the tails,
    then one array per column of :data:`_GIVEN`."""
    columns: list[list[Any]] = [[] for _ in range(len(_GIVEN) + 1)]
    tails, *given = columns
    for row in rows:
        tails.append(canonical_tail(row))
        for (name, _), column in zip(_GIVEN, given, strict=True):
            column.append(json_dumps(row[name]) if name == "detail" else row[name])
    return columns


def seal(head: tuple[int, str], rows: list[dict[str, Any]]) -> tuple[int, str]:
    """Give ``rows`` their positions and hashes after ``head`` (seq, hash); return the new head."""
    seq, previous = head
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = previous
        previous = row["hash"] = entry_hash(previous, row)
    return seq, previous


def entry_hash(previous: str, row: Mapping[Any, Any]) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON (sorted keys, UTC time
    with microseconds), so the same entry hashes the same read back from any database: the
    JSON array of its ``seq`` and :func:`canonical_tail`."""
    head = b"[%d," % row["seq"]
    return hashlib.sha256(previous.encode("ascii") + head + canonical_tail(row)).hexdigest()


def canonical_tail(row: Mapping[Any, Any]) -> bytes:
    """The entry's canonical JSON after its ``seq``: what follows ``[<seq>,`` (the position is
    the one part only the chain's head gives, so the database can finish the hash)."""
    pharmacy_id = row["pharmacy_id"]
    canonical = orjson.dumps(
        [
            row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
            row["actor"],
            None if pharmacy_id is None else str(pharmacy_id),
            row["action"],
            row["resource_type"],
            row["resource_id"],
            row["outcome"],
            row["ip"],
            row["detail"],
        ],
        default=json_default,
        option=orjson.OPT_SORT_KEYS,
    )
    return canonical[1:]


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int  # the last good entry's seq
    problem: str | None = None  # where and how the chain breaks; None if it holds
    pruned: int = 0  # entries 1 to this one were removed by retention (the checkpoint)

    @property
    def intact(self) -> bool:
        return self.problem is None


class ChainCheck:
    """Walks entries in ``seq`` order; :meth:`finish` compares the last with the head."""

    def __init__(self, start: tuple[int, str] = (0, GENESIS)) -> None:
        """``start``: the entry before the first one to check (the checkpoint, if pruned)."""
        self.entries, self._previous = start
        self.problem: str | None = None

    def feed(self, row: Mapping[Any, Any]) -> bool:
        """Check the next entry; False once the chain is broken."""
        expected, seq = self.entries + 1, row["seq"]
        if seq != expected:
            self.problem = f"entry {expected} is missing (the next is {seq})"
        elif row["prev_hash"] != self._previous:
            self.problem = f"entry {seq} does not follow entry {seq - 1}"
        elif entry_hash(self._previous, row) != row["hash"]:
            self.problem = f"entry {seq} was altered after it was written"
        else:
            self._previous, self.entries = row["hash"], seq
        return self.problem is None

    def finish(self, head: tuple[int, str]) -> ChainReport:
        if self.problem is None and (self.entries, self._previous) != head:
            self.problem = (
                f"the chain ends at entry {self.entries} but its head says {head[0]}: "
                "entries were removed from the end"
            )
        return ChainReport(self.entries, self.problem)


_PAGE = 2000
_HEAD = select(AuditChain.seq, AuditChain.hash).where(AuditChain.id == HEAD_ID)
_CHECKPOINT = select(AuditChain.seq, AuditChain.hash).where(AuditChain.id == CHECKPOINT_ID)


async def checkpoint(session: AsyncSession) -> tuple[int, str]:
    """The last entry retention removed (``seq``, hash): ``(0, GENESIS)`` if none was."""
    row = (await session.execute(_CHECKPOINT)).one_or_none()
    return (0, GENESIS) if row is None else (row.seq, row.hash)


async def verify(db: Database) -> ChainReport:
    """Check the chain from the retention checkpoint up to the head as it is now (later
    appends are not waited for), that an entry of the chain attests the checkpoint, and that
    no committed entry waits outside it: ``audit_pending`` is empty outside a transaction
    unless entries were written with triggers off (a replica session, a restore with
    ``--disable-triggers``), and then they are not chained."""
    async with db.sessions() as session:
        seq, last = (await session.execute(_HEAD)).one()
        start = await checkpoint(session)
        check = ChainCheck(start)
        async for row in _entries(session, AuditEvent.seq <= seq, after=start[0]):
            if not check.feed(row):
                break
        report = check.finish((seq, last))
        if report.intact and start[0]:
            problem = await _unattested(session, start)
            report = ChainReport(report.entries, problem)
        waiting = await session.scalar(select(func.count()).select_from(AuditPending))
    report = ChainReport(report.entries, report.problem, start[0])
    if report.intact and waiting:
        return ChainReport(
            report.entries,
            f"{waiting} entries were committed but never chained (audit_pending: written "
            "with triggers off)",
            start[0],
        )
    return report


async def _unattested(session: AsyncSession, start: tuple[int, str]) -> str | None:
    """Why the checkpoint ``start`` is not the one a successful retention run recorded in
    the chain (one moved or made by hand to hide removed entries, one a failed run named);
    None if one attests it."""
    details = await session.scalars(
        select(AuditEvent.detail).where(
            AuditEvent.action == CHECKPOINT_ACTION,
            AuditEvent.actor == str(RETENTION),
            AuditEvent.outcome == "success",
            AuditEvent.seq > start[0],
        )
    )
    for detail in details:
        pruned = (detail or {}).get("audit") or {}
        if (pruned.get("through_seq"), pruned.get("through_hash")) == start:
            return None
    return (
        f"entries up to {start[0]} were removed, but no retention entry of the chain "
        "records that checkpoint"
    )


async def export(db: Database, since: dt.datetime) -> AsyncIterator[dict[str, Any]]:
    """Entries from ``since`` on, in chain order, as JSON-ready dicts (the hashes included, so
    an export can be checked on its own from its first entry's ``prev_hash``)."""
    async with db.sessions() as session:
        async for row in _entries(session, AuditEvent.at >= since):
            entry = dict(row)
            entry["at"] = row["at"].isoformat(timespec="microseconds")
            entry["pharmacy_id"] = None if row["pharmacy_id"] is None else str(row["pharmacy_id"])
            entry.pop("id")
            yield entry


async def _entries(
    session: AsyncSession, condition: Any, after: int = 0
) -> AsyncIterator[RowMapping]:
    """Entries matching ``condition`` after ``after`` in ``seq`` order, a page at a time."""
    while True:
        page = (
            (
                await session.execute(
                    select(AuditEvent.__table__)
                    .where(condition, AuditEvent.seq > after)
                    .order_by(AuditEvent.seq)
                    .limit(_PAGE)
                )
            )
            .mappings()
            .all()
        )
        for row in page:
            yield row
        if len(page) < _PAGE:
            return
        after = page[-1]["seq"]


class _Refused(Exception):
    """Carries a refusal from :func:`refuse` out of :func:`refusable`'s unit of work."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__()
        self.refusal = refusal


@asynccontextmanager
async def refusable(db: Database) -> AsyncIterator[AsyncSession]:
    """One unit of work (like ``db.transaction()``) that may end in :func:`refuse`: then it
    commits and raises the refusal; any other exception rolls it back as usual."""
    refusal: Exception | None = None
    async with db.transaction() as session:
        try:
            yield session
        except _Refused as refused:
            refusal = refused.refusal
    if refusal is not None:
        raise refusal from None


async def refuse(session: AsyncSession, actor: Actor, event: Event, refusal: Exception) -> NoReturn:
    """Record ``event`` (its outcome says why: ``refused``, ``not_found`` ...) as the last
    statement of :func:`refusable`'s unit of work and end it with ``refusal``."""
    await add(session, actor, event)
    raise _Refused(refusal)


async def found(
    session: AsyncSession, actor: Actor, event: Event, row: T | None, missing: Exception
) -> T:
    """``row``, the caller's pharmacy's record the unit of work reads or changes; ``None`` (in
    another pharmacy, or nowhere) ends :func:`refusable`'s unit of work with ``missing``,
    ``event`` recorded as a miss (``not_found``): a probe for other pharmacies' IDs leaves a
    trace."""
    if row is None:
        await refuse(session, actor, replace(event, outcome="not_found"), missing)
    return row


async def record(db: Database, actor: Actor, event: Event) -> None:
    """Record ``event`` in a transaction of its own."""
    async with db.transaction() as session:
        await add(session, actor, event)


class RecordsReport(Protocol):
    """What a check of signed records (beside the chain) found."""

    @property
    def records(self) -> int: ...

    @property
    def problems(self) -> tuple[str, ...]: ...


#: a check of signed records ``audit verify`` runs after the chain's, named for its report
#: (features pass theirs through cli.py, so this package imports none of them)
RecordCheck = tuple[str, Callable[[Database, Settings], Awaitable[RecordsReport]]]


def register_cli(commands: Commands, record_checks: Sequence[RecordCheck] = ()) -> None:
    audit = group(commands, "audit", help="check and export the audit trail")
    audit.add_parser(
        "verify",
        help="check the hash chain and the signed archives; exit 1 if any entry or record "
        "was altered or removed",
    ).set_defaults(run=cmd_audit_verify, record_checks=tuple(record_checks))
    audit_export = audit.add_parser("export", help="write entries as JSON lines to standard output")
    audit_export.add_argument(
        "--since",
        type=_since,
        required=True,
        help="ISO 8601 date or time (UTC unless it has an offset)",
    )
    audit_export.set_defaults(run=cmd_audit_export)


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> None:
    report = with_database(settings, verify)
    if not report.intact:
        raise CliError(f"audit chain BROKEN after {report.entries} good entries: {report.problem}")
    if report.pruned:
        print(
            f"audit chain intact: {report.entries - report.pruned} entries, from entry "
            f"{report.pruned + 1} (1 to {report.pruned} removed by retention, checkpoint attested)"
        )
    else:
        print(f"audit chain intact: {report.entries} entries")
    broken: list[str] = []
    for name, check in getattr(args, "record_checks", ()):
        records: RecordsReport = with_database(settings, functools.partial(_run, check, settings))
        for problem in records.problems:
            print(f"{name}: {problem}", file=sys.stderr)
        if records.problems:
            broken.append(f"{name} TAMPERED: {len(records.problems)} of {records.records} records")
        else:
            print(f"{name} intact: {records.records} records")
    if broken:
        raise CliError("; ".join(broken))


async def _run(
    check: Callable[[Database, Settings], Awaitable[RecordsReport]],
    settings: Settings,
    db: Database,
) -> RecordsReport:
    return await check(db, settings)


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> None:
    async def write(db: Database) -> int:
        count = 0
        async for entry in export(db, args.since):
            sys.stdout.write(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode() + "\n")
            count += 1
        return count

    count = with_database(settings, write)
    print(f"exported {count} audit entries", file=sys.stderr)


def _since(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO 8601 date or time") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
