"""The backstop of delivery: outbound messages due for longer than they should be (a publish
lost with the broker away or the hub stopping, a retry's countdown lost, a worker killed
mid-delivery whose claim lapsed) are published again. A delivery of a message that is not due
does nothing, so a duplicate costs a query.

Runs as a supervised loop of the hub (:mod:`server.background`), beside the checks' sweep.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

from sqlalchemy.orm import Session

from ..db import Database
from ..db.models import utcnow
from . import store

log = logging.getLogger(__name__)
#: messages queued per pass at most (the rest in the next)
BATCH = 500


class Queue(Protocol):
    def submit(self, ids: Iterable[uuid.UUID]) -> None: ...


#: what is due by a moment, at most so many (:func:`.store.due`)
Due = Callable[[Session, dt.datetime, int], list[uuid.UUID]]


class OutboxSweep:
    """Each call queues the messages overdue by more than ``late`` seconds; one it queued is
    not queued again by it within ``late`` seconds. ``due`` finds them: the SCRIPT outbox's
    by default, the patient notifications' (:func:`server.notifications.store.due`) too."""

    def __init__(
        self,
        db: Database,
        queue: Queue,
        late: float,
        batch: int = BATCH,
        due: Due = store.due,
        name: str = "outbox",
    ) -> None:
        self._db = db
        self._due = due
        self._name = name
        self._queue = queue
        self._late = late
        self._batch = batch
        self._queued: dict[uuid.UUID, float] = {}

    async def __call__(self) -> int:
        now = time.monotonic()
        self._queued = {i: at for i, at in self._queued.items() if now - at < self._late}
        before = utcnow() - dt.timedelta(seconds=self._late)
        async with self._db.sessions() as session:
            found = await session.run_sync(lambda s: self._due(s, before, self._batch))
        fresh = [message_id for message_id in found if message_id not in self._queued]
        self._queue.submit(fresh)
        self._queued.update(dict.fromkeys(fresh, now))
        if fresh:
            log.info("%s sweep: re-queueing %d messages", self._name, len(fresh))
        return len(fresh)
