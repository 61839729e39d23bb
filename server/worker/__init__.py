"""The validation queue on Celery: the hub publishes prescription IDs after commit, workers run
the checks. Broker: ``TELEPHARM_BROKER_URL`` (Redis or RabbitMQ), else the embedded SQLite-backed
broker in the data dir."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from celery import Celery

from .. import metrics
from ..background import BACKGROUND
from ..db import DATABASE
from ..db.models import utcnow
from ..notifications import NOTIFY, SEND_TASK
from ..notifications import QUEUE as NOTIFY_QUEUE
from ..outbox import DELIVER, DELIVER_TASK
from ..outbox import QUEUE as OUTBOUND_QUEUE
from ..prescriptions.store import RECHECK
from ..settings import SETTINGS, Settings
from .failures import RETRY_TRANSIENT, per_process, transient_as_retry
from .observed import carry_request_ids

CHECK_TASK = "telepharm.check_prescriptions"
QUEUE = "telepharm.checks"
#: outbound messages a delivery task carries at most
OUTBOUND_CHUNK = 32
#: how long a delivery task waits for company before it is published: a worker claims,
#: posts and concludes a task's messages together, so a busy outbox costs a fraction of a
#: task a message (its latency target is a second; a quiet one waits this much more)
OUTBOUND_LINGER = 0.05

if TYPE_CHECKING:
    from .checking import CheckOutcome
    from .publisher import CheckQueue

#: where the hub publishes checks after the intake commits
CHECK_QUEUE: web.AppKey[CheckQueue] = web.AppKey("check_queue")


def setup(app: web.Application, settings: Settings) -> None:
    """Hub side: publish checks after intake commits, and outbound messages and patient
    notifications after the changes that write them; sweep for stuck prescriptions and
    messages."""
    app.cleanup_ctx.append(_queue_ctx)


async def _queue_ctx(app: web.Application) -> AsyncIterator[None]:
    from ..notifications import store as notifications
    from ..outbox.sweep import OutboxSweep
    from .publisher import CheckQueue
    from .sweep import PASS_TIMEOUT, Sweep

    settings = app[SETTINGS]
    celery = create_celery(settings)
    queue = CheckQueue(celery, CHECK_TASK)
    app[CHECK_QUEUE] = queue
    app[RECHECK] = queue.submit
    # outbound messages go together, up to OUTBOUND_CHUNK a task (a worker claims and
    # concludes a task's messages in one transaction each)
    outbound = CheckQueue(celery, DELIVER_TASK, linger=OUTBOUND_LINGER, chunk=OUTBOUND_CHUNK)
    app[DELIVER] = outbound.submit
    # notifications likewise (a worker claims and concludes a task's together)
    notify = CheckQueue(celery, SEND_TASK, linger=OUTBOUND_LINGER, chunk=OUTBOUND_CHUNK)
    app[NOTIFY] = notify.submit
    sweep = Sweep(app[DATABASE], queue, settings.stuck_after)
    outbox_sweep = OutboxSweep(app[DATABASE], outbound, settings.stuck_after)
    notify_sweep = OutboxSweep(
        app[DATABASE], notify, settings.stuck_after, due=notifications.due, name="notifications"
    )
    background = app[BACKGROUND]
    every = settings.sweep_interval
    async with (
        background.every("sweep", every, sweep, timeout=PASS_TIMEOUT),
        background.every("outbox_sweep", every, outbox_sweep, timeout=PASS_TIMEOUT),
        background.every("notify_sweep", every, notify_sweep, timeout=PASS_TIMEOUT),
    ):
        yield
    await notify.close()
    await outbound.close()
    await queue.close()


def create_celery(settings: Settings) -> Celery:
    """The hub's and the workers' Celery app, which no other code of the process gets by
    chance: it is not made the current app (but in the hub's own publish thread, see
    :class:`~.publisher.CheckQueue`) and its tasks are ``shared=False`` (Celery would add them
    to every app finalized later in the process, the default one included, where each app
    made before collides with the next under the same task names)."""
    app = Celery("telepharm", broker=settings.broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # a worker that dies mid-check leaves the message to redeliver
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_routes={
            DELIVER_TASK: {"queue": OUTBOUND_QUEUE},
            SEND_TASK: {"queue": NOTIFY_QUEUE},
        },
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options=_transport_options(settings.broker),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    _register(app, settings)
    carry_request_ids()
    return app


def _transport_options(broker: str) -> dict[str, Any]:
    if broker.startswith(("redis://", "rediss://")):
        # Redis redelivers unacknowledged messages after this; the hub's sweep is the backstop
        return {"visibility_timeout": 120}
    return {}  # the SQLAlchemy transport hands its options to create_engine


def _register(app: Celery, settings: Settings) -> None:
    from . import beat, notify, outbound

    outbound.register(app, settings)
    notify.register(app, settings)
    beat.register(app, settings)
    app.conf.beat_schedule = beat.beat_schedule(settings)

    def make_checker() -> Any:
        from .checking import Checker

        return Checker.from_settings(settings)

    checker = per_process(make_checker)
    observer = metrics.observer(settings)

    # only what may pass (the database unreachable): a prescription whose checks fail
    # otherwise is parked by the checker, never retried for ever with its chunk
    @app.task(name=CHECK_TASK, **RETRY_TRANSIENT, shared=False)
    def check_prescriptions(prescription_ids: list[str]) -> None:
        """Check each prescription; a retry re-runs the chunk, and the ones already checked
        are no-ops (Checker.check is idempotent)."""
        started = time.perf_counter()
        asked = {uuid.UUID(i) for i in prescription_ids}
        with transient_as_retry():
            outcomes = checker().check_many(sorted(asked))
        _report(observer, outcomes, asked, time.perf_counter() - started)


def _report(
    observer: metrics.Observer, outcomes: list[CheckOutcome], asked: set[uuid.UUID], took: float
) -> None:
    """The check latency of the prescriptions a task was asked for (not those it checked
    again because they went stale: their receipt is older than this check's reason)."""
    now = utcnow()
    latencies = [
        (now - o.received_at).total_seconds()
        for o in outcomes
        if o.received_at is not None and o.prescription_id in asked
    ]
    observer.checks(latencies, sum(o.parked for o in outcomes), took)
