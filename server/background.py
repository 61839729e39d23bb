"""The hub's background loops, kept running and reported to readiness.

A loop that dies takes its work with it silently: a sweep gone means checks that never run
again, and nothing says so. So no feature starts a bare task for periodic work; it asks the
process's :class:`Supervisor` (``app[BACKGROUND]``) for a :class:`Loop` and runs it as an async
context manager inside its cleanup context, so the loop stops before the resources it uses
close::

    async def _ctx(app):
        async with app[BACKGROUND].every("sweep", 30.0, Sweep(db, queue, 60.0)):
            yield

Any exception but a cancellation of the loop itself is logged (its type only: messages may
carry patient data) and the work is retried after a backoff that doubles up to a ceiling; the
first success after failures is logged too. ``/readyz`` shows each loop as ``ok``, ``failing``
(retrying after an error) or ``stopped`` (not running: only a bug or an outside cancellation
gets there while the app runs).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from .settings import Settings

log = logging.getLogger(__name__)

OK = "ok"
FAILING = "failing"
STOPPED = "stopped"

#: the first retry after a failure comes this soon (or after one interval, if shorter)
FIRST_RETRY = 1.0
#: retries never wait longer than this (or one interval, if longer)
MAX_RETRY = 30.0

#: one round of a periodic loop; may be a plain function
Step = Callable[[], Awaitable[object] | object]


class Loop:
    """One supervised loop: ``run`` again and again, after a backoff whenever it raises or
    returns. ``run`` receives the loop and calls :meth:`ok` once it is doing its work, which
    clears the failure count (and so the backoff)."""

    def __init__(
        self,
        name: str,
        run: Callable[[Loop], Awaitable[None]],
        *,
        first_retry: float = FIRST_RETRY,
        max_retry: float = MAX_RETRY,
        failing: str = FAILING,
    ) -> None:
        self.name = name
        self._run = run
        self._first_retry = first_retry
        self._max_retry = max(first_retry, max_retry)
        self._failing = failing
        self._task: asyncio.Task[None] | None = None
        #: consecutive failures (0: the last run went well, or none ended yet)
        self.failures = 0

    @property
    def state(self) -> str:
        if self._task is None or self._task.done():
            return STOPPED
        return self._failing if self.failures else OK

    def ok(self) -> None:
        if self.failures:
            log.info("%s: working again after %d failures", self.name, self.failures)
        self.failures = 0

    def retry_delay(self) -> float:
        """How long to wait after the current run of failures before trying again."""
        return min(self._max_retry, self._first_retry * 2 ** max(0, self.failures - 1))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it (an in-flight query ends before its engine closes)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> Loop:
        self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _supervise(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while True:
            try:
                await self._run(self)
                raise RuntimeError("the loop returned")
            except asyncio.CancelledError:
                if me.cancelling():
                    raise  # stopped on purpose
                failure: BaseException = asyncio.CancelledError()  # from inside its work
            except Exception as exc:
                failure = exc
            self.failures += 1
            delay = self.retry_delay()
            log.warning(
                "%s failed (%s), attempt %d; retrying in %.3g s",
                self.name,
                type(failure).__name__,
                self.failures,
                delay,
            )
            await asyncio.sleep(delay)


class Supervisor:
    """The loops of one hub process (``app[BACKGROUND]``), for readiness."""

    def __init__(self) -> None:
        self._loops: dict[str, Loop] = {}

    def keep(
        self, name: str, run: Callable[[Loop], Awaitable[None]], *, failing: str = FAILING
    ) -> Loop:
        """Long-running work (see :class:`Loop`); ``failing`` names its state between a
        failure and the next :meth:`Loop.ok`."""
        return self._add(Loop(name, run, failing=failing))

    def every(
        self, name: str, interval: float, step: Step, *, timeout: float | None = None
    ) -> Loop:
        """``step`` every ``interval`` seconds; a step that raises, or outlasts ``timeout``, is
        retried after the backoff (at once after a success: the interval bounds the wait)."""

        async def run(loop: Loop) -> None:
            if not loop.failures:
                await asyncio.sleep(interval)  # a retry comes after its backoff instead
            while True:
                async with asyncio.timeout(timeout):
                    done = step()
                    if inspect.isawaitable(done):
                        await done
                loop.ok()
                await asyncio.sleep(interval)

        first, ceiling = min(FIRST_RETRY, interval), max(MAX_RETRY, interval)
        return self._add(Loop(name, run, first_retry=first, max_retry=ceiling))

    def _add(self, loop: Loop) -> Loop:
        self._loops[loop.name] = loop
        return loop

    def status(self) -> dict[str, str]:
        return {name: loop.state for name, loop in self._loops.items()}


#: the background loops of this process (sweep, log flush, consult heartbeat ...)
BACKGROUND: web.AppKey[Supervisor] = web.AppKey("background")


def setup(app: web.Application, settings: Settings) -> None:
    """Features add their loops to the process's supervisor as they start."""
    app[BACKGROUND] = Supervisor()
