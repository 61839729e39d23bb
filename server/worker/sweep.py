"""The backstop of the validation queue: prescriptions that sat in ``received`` or ``checking``
longer than they should (a lost message, a worker killed mid-check, a hub that died holding
failed publishes) are published again, and so are those awaiting a decision on findings that
went stale (their patient's picture changed) and were not checked again in time. Checks are
idempotent, so a duplicate costs a little work and nothing else.

A failed publish is not waited for here: the :class:`~.publisher.CheckQueue` that saw it
fail publishes it again as soon as the broker answers. The sweep runs as a supervised loop
(:mod:`server.background`): a database that is away makes a pass fail, never the sweep end.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import and_, or_, select, text

from ..db import Database
from ..db.models import utcnow
from ..prescriptions.models import REVIEWABLE_STATES, UNCHECKED, PatientPicture, Prescription

log = logging.getLogger(__name__)
#: prescriptions read per query
BATCH = 500
#: queries per pass: a backlog is queued in one pass, however large, up to this many batches
#: (the rest in the next pass); each query starts where the last ended
MAX_BATCHES = 40
#: a pass that takes longer (a stalled database) is abandoned and retried
PASS_TIMEOUT = 120.0
#: a prescription queued again and again waits at most this many times ``stuck_after``
#: between two of them
MAX_BACKOFF = 16

_Key = tuple[dt.datetime, uuid.UUID]


class Queue(Protocol):
    """Where the sweep hands what it found (:class:`~.publisher.CheckQueue`)."""

    def submit(self, ids: Iterable[uuid.UUID]) -> None: ...


async def _stuck_after(
    db: Database, cutoff: dt.datetime, last: _Key | None, limit: int
) -> list[_Key]:
    """The next ``limit`` stuck prescriptions after ``last``, oldest first."""
    # a test message stays received for good: it is never stuck, never checked
    query = select(Prescription.updated_at, Prescription.id).where(
        text(UNCHECKED),  # as ix_prescriptions_unchecked's, which it reads
        Prescription.updated_at < cutoff,
        Prescription.test.is_(False),
    )
    if last is not None:
        at, rx_id = last
        query = query.where(
            or_(
                Prescription.updated_at > at,
                and_(Prescription.updated_at == at, Prescription.id > rx_id),
            )
        )
    async with db.sessions() as session:
        found = await session.execute(
            query.order_by(Prescription.updated_at, Prescription.id).limit(limit)
        )
        return [(at, rx_id) for at, rx_id in found]


class Sweep:
    """One hub's sweep, a step of its supervised loop: each call queues every prescription
    stuck for over ``stuck_after`` seconds, a batch at a time, up to ``max_batches`` batches.

    A prescription it queued is queued again only after twice as long as the last wait
    (``stuck_after``, then twice that, up to :data:`MAX_BACKOFF` times it): one that a lost
    message left behind is queued at once, while a backlog the workers are only slow to
    reach (its messages are in the broker) is not queued again each pass: every copy would
    wait in the same queue and cost the workers a start that finds nothing to do, slowing
    them further behind. Database errors propagate (the loop logs them and retries)."""

    def __init__(
        self,
        db: Database,
        queue: Queue,
        stuck_after: float,
        batch: int = BATCH,
        max_batches: int = MAX_BATCHES,
    ) -> None:
        self._db = db
        self._queue = queue
        self._after = stuck_after
        self._batch = batch
        self._max_batches = max_batches
        #: what this sweep queued, by ID: when it may be queued again (time.monotonic) and
        #: how long the wait before that was
        self._queued: dict[uuid.UUID, tuple[float, float]] = {}

    async def __call__(self) -> int:
        """Sweep once; how many prescriptions were queued."""
        now = time.monotonic()
        # an entry outlives its wait by as long again: still stuck then, it waits twice as
        # long the next time; gone, it is forgotten
        self._queued = {
            i: (due, wait) for i, (due, wait) in self._queued.items() if now < due + wait
        }
        cutoff = utcnow() - dt.timedelta(seconds=self._after)
        queued = 0
        last: _Key | None = None
        for _ in range(self._max_batches):
            found = await _stuck_after(self._db, cutoff, last, self._batch)
            queued += self._submit([rx_id for _, rx_id in found], now)
            if len(found) < self._batch:
                break
            last = found[-1]
        queued += self._submit(await _stale(self._db, cutoff, self._batch), now)
        if queued:
            log.info("sweep: re-queueing %d prescriptions", queued)
        return queued

    def _submit(self, found: list[uuid.UUID], now: float) -> int:
        """Queue those of ``found`` whose wait is over; how many."""
        fresh: list[uuid.UUID] = []
        for rx_id in found:
            known = self._queued.get(rx_id)
            if known is not None and now < known[0]:
                continue
            wait = self._after if known is None else min(2 * known[1], MAX_BACKOFF * self._after)
            self._queued[rx_id] = (now + wait, wait)
            fresh.append(rx_id)
        self._queue.submit(fresh)
        return len(fresh)


async def _stale(db: Database, cutoff: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Prescriptions awaiting a decision whose findings rest on an older picture of their
    patient than today's, changed before ``cutoff`` (the worker checks again what a change
    made stale at once; these are what it left, a flood's tail or a lost task)."""
    query = (
        select(Prescription.id)
        .join(PatientPicture, PatientPicture.patient_id == Prescription.patient_id)
        .where(
            text(REVIEWABLE_STATES),  # as ix_prescriptions_reviewable's, which it reads
            or_(
                Prescription.checked_basis.is_(None),
                Prescription.checked_basis < PatientPicture.version,
            ),
            PatientPicture.changed_at < cutoff,
        )
        .order_by(PatientPicture.changed_at, Prescription.id)
        .limit(limit)
    )
    async with db.sessions() as session:
        return list(await session.scalars(query))
