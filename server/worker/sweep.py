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

from sqlalchemy import and_, or_, select

from eprescribe.workflow import REVIEWABLE, State

from ..db import Database
from ..db.models import utcnow
from ..prescriptions.models import PatientPicture, Prescription

log = logging.getLogger(__name__)
#: prescriptions read per query
BATCH = 500
#: queries per pass: a backlog is queued in one pass, however large, up to this many batches
#: (the rest in the next pass); each query starts where the last ended
MAX_BATCHES = 40
#: a pass that takes longer (a stalled database) is abandoned and retried
PASS_TIMEOUT = 120.0

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
        Prescription.state.in_((State.RECEIVED, State.CHECKING)),
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

    A prescription it queued is not queued again by it within ``stuck_after`` seconds: while
    the workers are slow or away, the backlog goes to the broker once a minute, not once a
    pass. Database errors propagate (the loop logs them and retries)."""

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
        #: what this sweep queued lately, and when (time.monotonic)
        self._queued: dict[uuid.UUID, float] = {}

    async def __call__(self) -> int:
        """Sweep once; how many prescriptions were queued."""
        now = time.monotonic()
        self._queued = {i: at for i, at in self._queued.items() if now - at < self._after}
        cutoff = utcnow() - dt.timedelta(seconds=self._after)
        queued = 0
        last: _Key | None = None
        for _ in range(self._max_batches):
            found = await _stuck_after(self._db, cutoff, last, self._batch)
            fresh = [rx_id for _, rx_id in found if rx_id not in self._queued]
            self._queue.submit(fresh)
            self._queued.update(dict.fromkeys(fresh, now))
            queued += len(fresh)
            if len(found) < self._batch:
                break
            last = found[-1]
        stale = await _stale(self._db, cutoff, self._batch)
        fresh = [rx_id for rx_id in stale if rx_id not in self._queued]
        self._queue.submit(fresh)
        self._queued.update(dict.fromkeys(fresh, now))
        queued += len(fresh)
        if queued:
            log.info("sweep: re-queueing %d prescriptions", queued)
        return queued


async def _stale(db: Database, cutoff: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Prescriptions awaiting a decision whose findings rest on an older picture of their
    patient than today's, changed before ``cutoff`` (the worker checks again what a change
    made stale at once; these are what it left, a flood's tail or a lost task)."""
    query = (
        select(Prescription.id)
        .join(PatientPicture, PatientPicture.patient_id == Prescription.patient_id)
        .where(
            Prescription.state.in_(sorted(REVIEWABLE)),
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
