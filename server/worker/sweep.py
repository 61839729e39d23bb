"""The backstop of the validation queue: prescriptions that sat in ``received`` or ``checking``
longer than they should (a lost message, a worker killed mid-check, a hub that died holding
failed publishes) are published again. Checks are idempotent, so a duplicate costs a little
work and nothing else.

A failed publish is not waited for here: the :class:`~.publisher.CheckQueue` that saw it
fail publishes it again as soon as the broker answers. The sweep runs as a supervised loop
(:mod:`server.background`): a database that is away makes a pass fail, never the sweep end.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import and_, or_, select

from eprescribe.workflow import State

from ..db import Database
from ..db.models import Prescription, utcnow

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
    query = select(Prescription.updated_at, Prescription.id).where(
        Prescription.state.in_((State.RECEIVED, State.CHECKING)), Prescription.updated_at < cutoff
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


async def sweep_once(
    db: Database,
    queue: Queue,
    stuck_after: float,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Queue every prescription stuck for over ``stuck_after`` seconds (up to ``max_batches``
    batches of ``batch``) and return how many; database errors propagate."""
    cutoff = utcnow() - dt.timedelta(seconds=stuck_after)
    queued = 0
    last: _Key | None = None
    for _ in range(max_batches):
        found = await _stuck_after(db, cutoff, last, batch)
        queue.submit(rx_id for _, rx_id in found)
        queued += len(found)
        if len(found) < batch:
            break
        last = found[-1]
    if queued:
        log.info("sweep: re-queueing %d prescriptions", queued)
    return queued
