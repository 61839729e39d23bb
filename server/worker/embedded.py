"""The check worker that ``telepharm serve`` runs beside the hub (without ``--no-worker``), so
one command runs everything on a laptop.

Hub side: the worker process is a supervised loop (:mod:`server.background`) named ``worker``:
when it ends, however, it is reaped (no zombie) and started again after a backoff, and
``/readyz`` shows ``restarting`` until the new one has lived :data:`STARTED_WELL` seconds.

Worker side (:func:`die_with`): it must not outlive the hub, or every restart of a hub that
was killed leaves one more worker behind. Linux sends it SIGTERM when the hub dies (the
parent-death signal); where that is not available or was missed, a thread sees its parent
change and does the same. SIGTERM is Celery's warm shutdown (the check in hand finishes);
a worker still there :data:`GRACE` seconds later exits at once (its unacknowledged check is
delivered again).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator

from aiohttp import web

from ..background import BACKGROUND, Loop

log = logging.getLogger(__name__)

#: a worker that has run this long started well: a later exit restarts it after the first step
#: of the backoff again, and readiness shows ``ok``
STARTED_WELL = 10.0
#: how long a stopping hub waits for its worker's warm shutdown before killing it
STOP_WAIT = 30.0
#: how often the worker looks whether its hub is still its parent
POLL = 1.0
#: how long a worker whose hub is gone may take to finish its check
GRACE = 10.0
#: prctl(2) option: the signal this process gets when its parent dies
PR_SET_PDEATHSIG = 1


class WorkerExited(Exception):
    """The embedded worker process ended; the supervisor starts another."""


async def embedded_worker(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of ``telepharm serve``: a supervised worker process beside the hub."""
    async with app[BACKGROUND].keep("worker", _run_worker, failing="restarting"):
        yield


async def _run_worker(loop: Loop) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "server", "worker", "--concurrency", "1", "--parent", str(os.getpid())),
        start_new_session=True,  # the hub stops it, in order (a terminal's ^C reaches the hub)
        stdout=asyncio.subprocess.DEVNULL,  # Celery prints its shutdown there; logs go to stderr
    )
    log.debug("embedded check worker started (pid %d)", process.pid)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STARTED_WELL):
                await process.wait()
        if process.returncode is None:
            loop.ok()
            await process.wait()
    finally:
        if process.returncode is None:  # the hub is stopping
            await _stop(process)
    reason = _describe(process.returncode)
    log.warning("embedded check worker ended (%s)", reason)
    raise WorkerExited(reason)


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()  # Celery's warm shutdown: the check in hand finishes first
    try:
        async with asyncio.timeout(STOP_WAIT):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def die_with(parent: int) -> None:
    """Make this process end when process ``parent`` (the hub that started it) does."""
    _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # gone before the signal was asked for
        sys.exit("telepharm: the hub that started this worker is gone")
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _parent_death_signal(sig: signal.Signals) -> None:
    if not sys.platform.startswith("linux"):
        return  # the watching thread alone
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("no parent-death signal (errno %d); watching the hub", ctypes.get_errno())


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL)
    log.warning("the hub that started this worker is gone; stopping")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE)
    os._exit(1)
