"""Publishing check tasks from the hub: after the intake commits, never before, never blocking.

Publishing is a blocking kombu call, so it runs on one dedicated thread (a broker that is down
must not tie up the event loop or the default executor), in batches: IDs that arrive while a
batch is being published go in the next one, and a batch lingers a few milliseconds to fill
(workers check a chunk in two transactions, so chunks of one would cost them most).

A batch that fails is kept and published again, after a backoff of at most
:data:`RETRY_MAX` seconds, with whatever arrived meanwhile: the backlog of a broker outage is
queued as soon as the broker answers again, not when the sweep next finds it stuck. What is
kept is bounded (:data:`MAX_HELD`); beyond that, and whatever a stopping or dying hub still
held, the prescriptions stay ``received`` and the sweep queues them later.

Each ID keeps the context it was submitted in (the request's): a task carries the IDs of the
requests behind its chunk in its ``request_ids`` header, and is published in the context of
the first, so a trace (when tracing is on) goes on from that request into the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from celery import Celery

from ..logs import REQUEST_ID

log = logging.getLogger(__name__)
#: a broker that does not answer quickly is treated as down; the batch is tried again later
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
#: the first new try after a failed publish, doubling up to the last
RETRY_FIRST = 0.25
RETRY_MAX = 2.0
#: prescription IDs kept for another try while the broker is away (about 100 bytes each)
MAX_HELD = 100_000
#: IDs per task: one publish costs ~1 ms of CPU (kombu and redis-py set-up), one per message
#: would cost as much as the rest of the intake; chunks of 32 still spread a burst over workers
CHUNK = 32


#: how long a batch waits for company before it is published
LINGER = 0.05
#: the task header with the IDs of the requests that enqueued its work
REQUEST_IDS = "request_ids"


class CheckQueue:
    """Publishes prescription IDs, in chunks, as the Celery task named ``task``."""

    def __init__(
        self, celery: Celery, task: str, linger: float = LINGER, chunk: int = CHUNK
    ) -> None:
        self._celery = celery
        self._task = task
        self._linger = linger
        self._chunk = chunk
        #: IDs to publish, oldest first, each once, with the context each was submitted in
        self._waiting: dict[uuid.UUID, contextvars.Context] = {}
        # the thread's current Celery app (thread-local) is this one: the tracing of a publish
        # (the instrumentation's producer span) finds the task in the current app's registry,
        # which elsewhere is whichever app the process made current or default
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="publish", initializer=celery.set_current
        )
        self._runner: asyncio.Task[None] | None = None
        #: failed publishes in a row (0: the broker took the last one)
        self._failures = 0
        self._shed = 0
        self._closing = asyncio.Event()

    def submit(self, ids: Iterable[uuid.UUID]) -> None:
        self._waiting.update(dict.fromkeys(ids, contextvars.copy_context()))
        if len(self._waiting) > MAX_HELD:
            self._shed_newest()
        if self._waiting and (self._runner is None or self._runner.done()):
            self._runner = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if len(self._waiting) < self._chunk and not self._failures and self._linger:
                await asyncio.sleep(self._linger)
            batch = list(self._waiting.items())
            self._waiting.clear()
            try:
                await loop.run_in_executor(self._thread, self._publish, batch)
            except Exception as exc:  # any broker failure: keep the batch, try again
                self._failed(batch, exc)
                if not await self._backoff():
                    log.warning("%d checks left for the sweep", len(self._waiting))
                    return
            else:
                self._published()

    def _failed(self, batch: list[tuple[uuid.UUID, contextvars.Context]], exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            log.warning(
                "could not queue %d checks (%s); trying again until the broker answers",
                len(batch),
                type(exc).__name__,
            )
        self._waiting = {**dict(batch), **self._waiting}
        if len(self._waiting) > MAX_HELD:
            self._shed_newest()

    def _published(self) -> None:
        if self._failures or self._shed:
            log.info(
                "checks queued again after %d failed attempts (%d left for the sweep)",
                self._failures,
                self._shed,
            )
        self._failures = self._shed = 0

    def _shed_newest(self) -> None:
        """Keep the oldest :data:`MAX_HELD`: the newest wait for the sweep, in the database."""
        if not self._shed:
            log.warning("over %d checks wait for the broker; the sweep queues the rest", MAX_HELD)
        while len(self._waiting) > MAX_HELD:
            self._waiting.popitem()
            self._shed += 1

    async def _backoff(self) -> bool:
        """Wait before the next try; False when the queue is closing (no more tries)."""
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (self._failures - 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)
        return not self._closing.is_set()

    def _publish(self, batch: list[tuple[uuid.UUID, contextvars.Context]]) -> None:
        with self._celery.producer_or_acquire() as producer:
            for start in range(0, len(batch), self._chunk):
                part = batch[start : start + self._chunk]
                chunk = [str(rx_id) for rx_id, _ in part]
                origins = {id(origin): origin for _, origin in part}
                request_ids = [
                    i for i in dict.fromkeys(o.get(REQUEST_ID) for o in origins.values()) if i
                ]
                part[0][1].run(
                    self._celery.send_task,
                    self._task,
                    args=[chunk],
                    producer=producer,
                    retry=True,
                    retry_policy=PUBLISH_RETRY,
                    argsrepr=f"[{len(chunk)} IDs]",
                    kwargsrepr="{}",
                    headers={REQUEST_IDS: request_ids},
                )

    async def reachable(self, within: float) -> bool:
        """Whether the broker answers (for readiness probes); never raises."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._thread, self._connect), within)
        except Exception:  # down, refused, timed out: all mean "not now"
            return False
        return True

    def _connect(self) -> None:
        with self._celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)

    async def close(self) -> None:
        """Publish what waits, unless the broker is failing (the sweep queues it then)."""
        self._closing.set()
        if self._runner is not None:
            await self._runner
        self._thread.shutdown(wait=True)


class FollowUp(Protocol):
    """A row to publish again: its ID, and after how many seconds (None: now)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def countdown(self) -> float | None: ...


def publish_follow_ups(celery: Celery, task: str, queue: str, found: Iterable[FollowUp]) -> None:
    """From a worker's task: publish each of ``found`` as ``task`` (one ID a task) with its
    countdown; one the broker does not take is left for the sweep (its row is due)."""
    for follow in found:
        try:
            celery.send_task(
                task,
                args=[[str(follow.id)]],
                countdown=follow.countdown,
                queue=queue,
                retry=True,
                retry_policy=PUBLISH_RETRY,
            )
        except Exception as exc:  # the broker away: the row is due, the sweep queues it
            log.warning("%s %s left for the sweep (%s)", task, follow.id, type(exc).__name__)
