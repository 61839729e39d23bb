"""``telepharm retention``: remove the records older than their retention, nothing younger.

A prescription goes once it is settled (completed, rejected, cancelled or returned to stock)
and unchanged since its kind's cutoff (:mod:`eprescribe.retention`), with everything recorded
about it: the rows that reference it, directly or through one another (transitions, findings,
notes, fills and their images, shipments, the EPCS archive, outbound messages, answers,
refill requests), its SCRIPT message as received, and the image files. It stays, with all of
them, while any of those rows was made or changed (:data:`DATED`) at or after its cutoff.
A consult only names a prescription (:data:`UNLINKED`): it stays, with its recording,
unlinked. Prescriptions linked to one another (a change or renewal that replaced another, a
prescriber's answer naming both) go together or not at all. Messages as received that
nothing references any more go once older than both prescription cutoffs.

Audit entries go once older than their cutoff, without breaking the chain: the run moves the
chain's checkpoint (``audit_chain`` row 2) to the last entry removed and, in the same
transaction, chains its one summary entry, which records that checkpoint's ``seq`` and hash;
only then are the entries at or below it deleted (the database refuses deleting any other, or
any younger than the legal minimum, migration 0039). ``audit verify`` starts from the
checkpoint and requires a successful run's entry of the chain to attest it, so removing or
altering entries is still detected after a pruning.

Work goes in batches, each its own transaction, so the hub keeps running.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.retention import Kind, cutoff

from .. import audit
from ..audit.models import AuditChain, AuditEvent
from ..db import Database
from ..models import METADATA
from ..prescriptions.models import InboundMessage, Prescription
from ..settings import Settings

#: a prescription in one of these states has nothing in hand: its records may age out
SETTLED = ("completed", "rejected", "cancelled", "returned_to_stock")
BATCH = 200
ACTOR = audit.RETENTION
#: links to a prescription that only give a row its context (a consult is the patient's
#: record, not the prescription's): retention sets them NULL and keeps the row
UNLINKED = frozenset({("consults", "prescription_id")})
#: the columns that date a row: a prescription stays while a row that hangs from it was made
#: or changed at or after the prescription's cutoff
DATED = ("created_at", "updated_at", "at", "received_at")

#: rows by table, primary key -> the prescriptions (of the group being removed) each hangs from
Found = dict[str, dict[Any, set[uuid.UUID]]]


@dataclass
class Plan:
    """What a run removes (or, dry, would remove)."""

    cutoffs: dict[Kind, dt.datetime]
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    prescriptions: dict[Kind, int] = field(default_factory=lambda: defaultdict(int))
    messages: int = 0
    files: int = 0
    audit_entries: int = 0
    #: the checkpoint the run moved (committed), or (dry) would move
    audit_through: tuple[int, str] | None = None
    #: rows kept but unlinked from a removed prescription, by "table.column"
    unlinked: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> dict[str, Any]:
        return {
            "cutoffs": {kind.value: at.isoformat() for kind, at in self.cutoffs.items()},
            "prescriptions": {kind.value: n for kind, n in self.prescriptions.items()},
            "rows": {str(name): n for name, n in sorted(self.rows.items())},
            "unlinked": dict(sorted(self.unlinked.items())),
            "messages": self.messages,
            "files": self.files,
            "audit_entries": self.audit_entries,
        }


def cutoffs(settings: Settings, now: dt.datetime, before: dt.datetime | None) -> dict[Kind, Any]:
    return {kind: cutoff(now, settings.retention_days(kind), before) for kind in Kind}


async def run(
    db: Database,
    settings: Settings,
    *,
    dry_run: bool,
    before: dt.datetime | None = None,
    now: dt.datetime | None = None,
    batch: int = BATCH,
) -> Plan:
    plan = Plan(cutoffs(settings, now or dt.datetime.now(dt.UTC), before))
    try:
        await _prescriptions(db, settings, plan, dry_run=dry_run, batch=batch)
        await _messages(db, plan, dry_run=dry_run, batch=batch)
        await _audit(db, plan, dry_run=dry_run, batch=batch)
    except BaseException:
        if not dry_run:  # what was removed before the failure is audited all the same
            await audit.record(db, ACTOR, _event(plan, "failed", plan.audit_through))
        raise
    return plan


def _event(plan: Plan, outcome: str, through: tuple[int, str] | None) -> audit.Event:
    """The run's summary entry; ``through``: the checkpoint it attests (committed with it)."""
    detail = plan.summary()
    if through is not None:
        detail["audit"] = {"through_seq": through[0], "through_hash": through[1]}
    return audit.Event(audit.CHECKPOINT_ACTION, "retention", outcome=outcome, detail=detail)


# -- prescriptions --------------------------------------------------------------------------


def _eligible(plan: Plan) -> Any:
    controlled = Prescription.dea_schedule.is_not(None) & (Prescription.dea_schedule != "")
    return Prescription.state.in_(SETTLED) & or_(
        controlled & (Prescription.updated_at < plan.cutoffs[Kind.CONTROLLED]),
        ~controlled & (Prescription.updated_at < plan.cutoffs[Kind.PRESCRIPTIONS]),
    )


def _links(tables: dict[str, Table]) -> list[tuple[Table, str, str]]:
    """The foreign keys that tie one prescription to another: (table, column, column)."""
    found = []
    for table in tables.values():
        columns = [
            fk.parent.name for fk in table.foreign_keys if fk.column.table.name == "prescriptions"
        ]
        if table.name == "prescriptions":
            found += [(table, "id", column) for column in columns]
        elif len(columns) > 1:
            found += [(table, a, b) for a in columns for b in columns if a < b]
    return found


async def _pairs(
    session: AsyncSession, links: list[tuple[Table, str, str]], group: set[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Every link from a prescription of ``group`` to another: (one of the group, other)."""
    pairs = set()
    for table, a, b in links:
        for column, other in ((a, b), (b, a)):
            rows = await session.execute(
                select(table.c[column], table.c[other]).where(
                    table.c[column].in_(group), table.c[other].is_not(None)
                )
            )
            pairs |= {(mine, theirs) for mine, theirs in rows if mine != theirs}
    return pairs


async def _closed(
    session: AsyncSession, plan: Plan, ids: set[uuid.UUID], kept: Collection[uuid.UUID] = ()
) -> set[uuid.UUID]:
    """``ids`` with the eligible prescriptions they are linked to, less those linked to a
    prescription that stays (or one of ``kept``): a linked group goes whole or not at all."""
    links = _links(dict(METADATA.tables))
    group = set(ids) - set(kept)
    for _ in range(4):  # groups are small: a change, a renewal of a change
        new = {theirs for _, theirs in await _pairs(session, links, group)} - group - set(kept)
        eligible = set(
            await session.scalars(
                select(Prescription.id).where(Prescription.id.in_(new), _eligible(plan))
            )
        )
        if not eligible:
            break
        group |= eligible
    pairs = await _pairs(session, links, group)
    while blocked := {mine for mine, theirs in pairs if mine in group and theirs not in group}:
        group -= blocked
    return group


def _children(tables: dict[str, Table]) -> dict[str, list[tuple[Table, str, str]]]:
    """For each table, the tables referencing it: (child, child column, parent column)."""
    found: dict[str, list[tuple[Table, str, str]]] = defaultdict(list)
    for table in tables.values():
        for fk in table.foreign_keys:
            found[fk.column.table.name].append((table, fk.parent.name, fk.column.name))
    return found


async def _dependants(session: AsyncSession, roots: Found) -> Found:
    """``roots`` and every row that references them (transitively), each with the
    prescriptions it hangs from; prescriptions only as given (the group is closed already),
    consults not at all (:data:`UNLINKED`)."""
    children = _children(dict(METADATA.tables))
    found: Found = defaultdict(dict)
    for name, rows in roots.items():
        for key, origins in rows.items():
            found[name].setdefault(key, set()).update(origins)
    frontier: Found = {name: dict(rows) for name, rows in roots.items()}
    while frontier:
        following: Found = defaultdict(dict)
        for parent, rows in frontier.items():
            for child, column, parent_column in children.get(parent, []):
                if (
                    child.name == "prescriptions"
                    or (child.name, column) in UNLINKED
                    or parent_column != "id"
                    or not rows
                ):
                    continue
                (key,) = child.primary_key.columns
                result = await session.execute(
                    select(key, child.c[column]).where(child.c[column].in_(list(rows)))
                )
                for row, parent_key in result:
                    origins = rows[parent_key]
                    mine = found[child.name].setdefault(row, set())
                    if not origins <= mine:
                        mine |= origins
                        following[child.name].setdefault(row, set()).update(origins)
        frontier = following
    return found


async def _unreferenced_messages(
    session: AsyncSession, candidates: Iterable[uuid.UUID], removed: Found
) -> set[uuid.UUID]:
    """Of ``candidates`` (inbound messages), those no row that stays references."""
    keep: set[uuid.UUID] = set()
    candidates = set(candidates)
    for child, column, _ in _children(dict(METADATA.tables)).get("inbound_messages", []):
        (key,) = child.primary_key.columns
        rows = await session.execute(
            select(child.c[column], key).where(child.c[column].in_(candidates))
        )
        keep |= {message for message, row in rows if row not in removed.get(child.name, set())}
    return candidates - keep


async def _collect(session: AsyncSession, group: set[uuid.UUID]) -> Found:
    """What goes with the prescriptions of ``group``: the rows that hang from them, their
    messages as received and the messages only those rows referenced."""
    messages: dict[Any, set[uuid.UUID]] = defaultdict(set)
    for message, rx in await session.execute(
        select(Prescription.inbound_message_id, Prescription.id).where(Prescription.id.in_(group))
    ):
        messages[message].add(rx)
    found = await _dependants(session, {"prescriptions": {rx: {rx} for rx in group}})
    referenced: dict[Any, set[uuid.UUID]] = defaultdict(set)
    for child, column, _ in _children(dict(METADATA.tables)).get("inbound_messages", []):
        if found.get(child.name):
            (key,) = child.primary_key.columns
            rows = await session.execute(
                select(key, child.c[column]).where(
                    key.in_(list(found[child.name])), child.c[column].is_not(None)
                )
            )
            for row, message in rows:
                referenced[message] |= found[child.name][row]
    for message in await _unreferenced_messages(session, set(referenced) - set(messages), found):
        messages[message] = referenced[message]
    return await _dependants(session, {**found, "inbound_messages": dict(messages)})


async def _young(
    session: AsyncSession, plan: Plan, found: Found, kinds: dict[uuid.UUID, Kind]
) -> set[uuid.UUID]:
    """The prescriptions a row of ``found`` dated at or after their cutoff hangs from."""
    kept: set[uuid.UUID] = set()
    for name, rows in found.items():
        table = METADATA.tables[name]
        dated = [table.c[column] for column in DATED if column in table.c]
        if name == "prescriptions" or not dated or not rows:
            continue
        (key,) = table.primary_key.columns
        for kind in (Kind.CONTROLLED, Kind.PRESCRIPTIONS):
            since = plan.cutoffs[kind]
            young = await session.scalars(
                select(key).where(key.in_(list(rows)), or_(*(c >= since for c in dated)))
            )
            for row in young:
                kept |= {rx for rx in rows[row] if kinds[rx] is kind}
    return kept


async def _unlink(
    session: AsyncSession, plan: Plan, group: set[uuid.UUID], *, dry_run: bool
) -> None:
    """Set the :data:`UNLINKED` links to the prescriptions of ``group`` NULL."""
    for name, column in sorted(UNLINKED):
        table = METADATA.tables[name]
        linked = table.c[column].in_(group)
        if dry_run:
            count = await session.scalar(select(func.count()).select_from(table).where(linked))
        else:
            count = (
                await session.execute(table.update().where(linked).values({column: None}))
            ).rowcount  # type: ignore[attr-defined]
        plan.unlinked[f"{name}.{column}"] += int(count or 0)


async def _remove(session: AsyncSession, found: Found) -> None:
    """Delete ``found`` children first (the reverse of the tables' dependency order); rows
    pointing at each other within a table are unlinked first."""
    for table in reversed(METADATA.sorted_tables):
        keys = found.get(table.name)
        if not keys:
            continue
        (key,) = table.primary_key.columns
        for fk in table.foreign_keys:
            if fk.column.table is table:  # a self-reference (a replaced prescription)
                await session.execute(
                    table.update().where(key.in_(list(keys))).values({fk.parent.name: None})
                )
        await session.execute(delete(table).where(key.in_(list(keys))))


async def _files(session: AsyncSession, found: Found) -> list[Path]:
    """The directories of files the rows in ``found`` own (relative to the data dir)."""
    paths: list[Path] = []
    fills = METADATA.tables["fills"]
    if found.get("fills"):
        rows = await session.execute(
            select(fills.c.pharmacy_id, fills.c.id).where(fills.c.id.in_(list(found["fills"])))
        )
        paths += [Path("fill-images") / str(pharmacy) / str(fill) for pharmacy, fill in rows]
    return paths


async def _prescriptions(
    db: Database, settings: Settings, plan: Plan, *, dry_run: bool, batch: int
) -> None:
    after: uuid.UUID | None = None
    while True:
        async with db.transaction() as session:
            query = select(Prescription.id, Prescription.dea_schedule).where(_eligible(plan))
            if after is not None:
                query = query.where(Prescription.id > after)
            page = (await session.execute(query.order_by(Prescription.id).limit(batch))).all()
            if not page:
                return
            after = page[-1].id
            ids, kept = {row.id for row in page}, set[uuid.UUID]()
            while group := await _closed(session, plan, ids, kept):
                kinds = {
                    rx: Kind.CONTROLLED if schedule else Kind.PRESCRIPTIONS
                    for rx, schedule in await session.execute(
                        select(Prescription.id, Prescription.dea_schedule).where(
                            Prescription.id.in_(group)
                        )
                    )
                }
                found = await _collect(session, group)
                young = await _young(session, plan, found, kinds)
                if not young:
                    break
                kept |= young
            if not group:
                continue
            for kind in kinds.values():
                plan.prescriptions[kind] += 1
            for name, keys in found.items():
                if name not in ("prescriptions", "inbound_messages"):
                    plan.rows[name] += len(keys)
            plan.messages += len(found["inbound_messages"])
            directories = await _files(session, found)
            await _unlink(session, plan, group, dry_run=dry_run)
            if not dry_run:
                await _remove(session, found)
        existing = [settings.data_dir / d for d in directories if (settings.data_dir / d).is_dir()]
        plan.files += sum(1 for d in existing for p in d.rglob("*") if p.is_file())
        if not dry_run:
            for directory in existing:
                shutil.rmtree(directory, ignore_errors=True)


async def _messages(db: Database, plan: Plan, *, dry_run: bool, batch: int) -> None:
    """Messages as received that nothing references, older than both prescription cutoffs
    (answers and cancels whose prescriptions went earlier, unknown senders' messages)."""
    before = min(plan.cutoffs[Kind.CONTROLLED], plan.cutoffs[Kind.PRESCRIPTIONS])
    after: uuid.UUID | None = None
    references = _children(dict(METADATA.tables)).get("inbound_messages", [])
    while True:
        async with db.transaction() as session:
            query = select(InboundMessage.id).where(InboundMessage.received_at < before)
            for child, column, _ in references:
                query = query.where(~exists().where(child.c[column] == InboundMessage.id))
            if after is not None:
                query = query.where(InboundMessage.id > after)
            page = list(await session.scalars(query.order_by(InboundMessage.id).limit(batch)))
            if not page:
                return
            after = page[-1]
            plan.messages += len(page)
            if not dry_run:
                await session.execute(delete(InboundMessage).where(InboundMessage.id.in_(page)))


# -- the audit trail ------------------------------------------------------------------------


async def _audit(db: Database, plan: Plan, *, dry_run: bool, batch: int) -> None:
    """Move the checkpoint and chain the summary in one transaction, then delete the entries
    at or below the checkpoint in batches (a run cut short leaves some: the next removes
    them, and ``verify`` never reads below the checkpoint)."""
    async with db.transaction() as session:
        start = await audit.checkpoint(session)
        # a prefix of the chain, all of it past the cutoff: up to the first entry that is not
        first_young = await session.scalar(
            select(func.min(AuditEvent.seq)).where(
                AuditEvent.seq > start[0], AuditEvent.at >= plan.cutoffs[Kind.AUDIT]
            )
        )
        last_query = select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq > start[0])
        if first_young is not None:
            last_query = last_query.where(AuditEvent.seq < first_young)
        last = (
            await session.execute(last_query.order_by(AuditEvent.seq.desc()).limit(1))
        ).one_or_none()
        through = None if last is None else (last.seq, last.hash)
        plan.audit_entries = int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.seq <= (last.seq if last else start[0]))
            )
            or 0
        )
        if dry_run:
            plan.audit_through = through
            return
        if last is not None:
            row = await session.get(AuditChain, audit.CHECKPOINT_ID, with_for_update=True)
            if row is None:
                session.add(AuditChain(id=audit.CHECKPOINT_ID, seq=last.seq, hash=last.hash))
            else:
                row.seq, row.hash = last.seq, last.hash
            await session.flush()
        await audit.add(session, ACTOR, _event(plan, "success", through))
    # committed: only now may a failure's entry name it
    plan.audit_through = through
    below = start[0] if through is None else through[0]
    while True:
        async with db.transaction() as session:
            page = list(
                await session.scalars(
                    select(AuditEvent.id)
                    .where(AuditEvent.seq <= below)
                    .order_by(AuditEvent.seq)
                    .limit(batch)
                )
            )
            if not page:
                return
            await session.execute(delete(AuditEvent).where(AuditEvent.id.in_(page)))
