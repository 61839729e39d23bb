"""Each pharmacy's queue revision: one counter a pharmacy (``queue_revisions``), counted up in
the unit of work of every change to what its queues show, so the consoles' poll
(``GET /api/v1/queue/revision``) reads one row however long the pharmacy's history is.

A writer calls :func:`touch` with the pharmacies its unit of work changed, anywhere in it;
the counters are counted up once each, in pharmacy-ID order, by one statement just before
the commit (``before_commit``): after every other statement of the unit of work, so its row
locks are the last taken before the audit chain's head (which PostgreSQL takes inside the
commit, migration 0023) and are held for one round trip and the commit, never across the
writer's own work. Each count-up draws one of the pharmacy's :data:`SHARDS` rows at random
and the revision is their sum: two writers of one pharmacy wait for each other only when
they drew the same row (one chance in 16), writers of different pharmacies never
(tests/benchmarks/revision_bump.py measured one row a pharmacy slowing four intake writers
of one pharmacy by a fifth). A unit of work rolled back counts nothing (what it touched is
forgotten). The intake's batched statement on PostgreSQL counts up in the statement itself
(:mod:`.writer`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from .models import QueueRevision

_TOUCHED = "queue_revisions.touched"
#: the rows a pharmacy's revision is shared over: writers that commit together draw
#: different ones (but for one chance in this many), so none waits for another's commit
SHARDS = 16


def touch(session: Session, pharmacy_ids: Iterable[uuid.UUID | None]) -> None:
    """Count up the queue revisions of ``pharmacy_ids`` when ``session``'s unit of work
    commits (once each, however often touched)."""
    wanted = {p for p in pharmacy_ids if p is not None}
    if wanted:
        session.info.setdefault(_TOUCHED, set()).update(wanted)


def bump_statement(dialect: str, pharmacy_ids: Iterable[uuid.UUID]) -> Any:
    """The upsert that counts up one share of each of ``pharmacy_ids``' revisions, drawn at
    random (a row made at 1 when missing), its rows in pharmacy-ID order so two writers'
    locks never cross."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(QueueRevision).values(
        [
            {"pharmacy_id": p, "shard": random.randrange(SHARDS), "revision": 1}  # noqa: S311
            for p in sorted(pharmacy_ids)
        ]
    )
    return statement.on_conflict_do_update(
        index_elements=[QueueRevision.pharmacy_id, QueueRevision.shard],
        set_={"revision": QueueRevision.revision + 1},
    )


async def current(session: Any, pharmacy_id: uuid.UUID) -> int:
    """The pharmacy's queue revision, the sum of its shares (0 before its first change):
    every commit that counts up makes it larger, whichever share it drew."""
    found = await session.scalar(
        select(func.sum(QueueRevision.revision)).where(QueueRevision.pharmacy_id == pharmacy_id)
    )
    return int(found or 0)


@event.listens_for(Session, "before_commit")
def _count_up(session: Session) -> None:
    touched = session.info.pop(_TOUCHED, None)
    if touched:
        session.execute(bump_statement(session.get_bind().dialect.name, touched))


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    # the unit of work ended without committing (or committed them already): a savepoint's
    # end keeps them (counted up with the unit of work's commit, if it commits)
    if transaction.parent is None:
        session.info.pop(_TOUCHED, None)
