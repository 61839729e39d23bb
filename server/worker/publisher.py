"""Publishing check tasks from the hub: after the intake commits, never before, never blocking.

Publishing is a blocking kombu call, so it runs on one dedicated thread (a broker that is down
must not tie up the event loop or the default executor), in batches: IDs that arrive while a
batch is being published go in the next one, and a batch lingers a few milliseconds to fill
(workers check a chunk in two transactions, so chunks of one would cost them most). A failure
is logged and forgotten: the prescription stays ``received`` and the sweep publishes it again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from celery import Celery

from . import CHECK_TASK, CHUNK

log = logging.getLogger(__name__)
#: a broker that does not answer quickly is treated as down; the sweep retries later
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


#: how long a batch waits for company before it is published
LINGER = 0.05


class CheckQueue:
    def __init__(self, celery: Celery, linger: float = LINGER) -> None:
        self._celery = celery
        self._linger = linger
        self._waiting: list[uuid.UUID] = []
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish")
        self._runner: asyncio.Task[None] | None = None

    def submit(self, ids: Iterable[uuid.UUID]) -> None:
        self._waiting.extend(ids)
        if self._waiting and (self._runner is None or self._runner.done()):
            self._runner = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if len(self._waiting) < CHUNK:
                await asyncio.sleep(self._linger)
            batch, self._waiting = self._waiting, []
            try:
                await loop.run_in_executor(self._thread, self._publish, batch)
            except Exception as exc:  # any broker failure: the sweep is the retry
                log.warning(
                    "could not queue %d checks (%s); the sweep will retry",
                    len(batch),
                    type(exc).__name__,
                )

    def _publish(self, ids: list[uuid.UUID]) -> None:
        with self._celery.producer_or_acquire() as producer:
            for start in range(0, len(ids), CHUNK):
                chunk = [str(rx_id) for rx_id in ids[start : start + CHUNK]]
                self._celery.send_task(
                    CHECK_TASK,
                    args=[chunk],
                    producer=producer,
                    retry=True,
                    retry_policy=PUBLISH_RETRY,
                    argsrepr=f"[{len(chunk)} prescriptions]",
                    kwargsrepr="{}",
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
        if self._runner is not None:
            await self._runner
        self._thread.shutdown(wait=True)
