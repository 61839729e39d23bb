"""A worker process's metrics, request IDs and traces: set up before Celery starts, for the
process and the pool processes it forks."""

from __future__ import annotations

import os
from typing import Any

from celery import signals

from .. import metrics, tracing
from ..db import ENGINE_HOOKS
from ..logs import REQUEST_ID, sane_request_id
from ..settings import Settings
from .publisher import REQUEST_IDS

#: the request IDs a task's lines name at most (a chunk's requests)
MAX_IDS = 64


def watch_worker(settings: Settings) -> None:
    """Count this worker's work among the machine's processes (docs/operations.md), trace
    its tasks when tracing is on."""
    metrics.prepare_process(settings)
    if settings.metrics:
        watching = metrics.observer(settings)
        ENGINE_HOOKS["metrics"] = lambda engine: watching.engine(engine, "worker")
        signals.worker_process_shutdown.connect(_pool_process_ends, weak=False)
    tracing.configure(settings, "telepharm-worker")


def _pool_process_ends(**_: Any) -> None:
    """A forked pool process ends (exiting without running atexit): its live gauges go."""
    metrics.mark_dead(os.getpid())


def carry_request_ids() -> None:
    """Tasks published while a request (or a task) is handled carry its ID, and a worker's
    lines while it runs a task carry the IDs the task came with (once a process)."""
    signals.before_task_publish.connect(_stamp, weak=False, dispatch_uid=_STAMP)
    signals.task_prerun.connect(_enter, weak=False, dispatch_uid=_ENTER)
    signals.task_postrun.connect(_leave, weak=False, dispatch_uid=_LEAVE)


_STAMP, _ENTER, _LEAVE = "telepharm.stamp", "telepharm.enter", "telepharm.leave"


def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None or headers.get(REQUEST_IDS):
        return
    current = REQUEST_ID.get()
    if current:
        headers[REQUEST_IDS] = current.split(",")


def _enter(task: Any = None, **_: Any) -> None:
    given = getattr(getattr(task, "request", None), REQUEST_IDS, None) or ()
    if isinstance(given, str):
        given = [given]
    sane = [i for i in (sane_request_id(str(g)) for g in list(given)[:MAX_IDS]) if i]
    REQUEST_ID.set(",".join(sane) or None)


def _leave(**_: Any) -> None:
    REQUEST_ID.set(None)
