"""The schedule's jobs (the scheduled notices, the payment plans' instalments) on Celery: the task
a worker runs (:data:`server.schedule.TASK`, under the schedule's leases, so a hub's own loop
and the beat never both run a job), the beat's timetable (``telepharm beat``, :mod:`.beat_cli`,
publishes the task every ``TELEPHARM_SCHEDULE_INTERVAL`` seconds)."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from ..notifications import QUEUE as NOTIFY_QUEUE
from ..notifications import SEND_TASK
from ..settings import Settings
from .failures import RETRY_TRANSIENT, transient_as_retry

#: notifications a sending task carries at most (as the hub's publisher chunks them)
CHUNK = 32


def beat_schedule(settings: Settings) -> dict[str, Any]:
    from ..schedule import TASK

    # expires: a run the workers could not take before the next one is moot
    every = settings.schedule_interval
    return {"scheduled-notices": {"task": TASK, "schedule": every, "options": {"expires": every}}}


def register(app: Celery, settings: Settings) -> None:
    from ..schedule import TASK
    from ..schedule.runner import Schedule

    made: list[Schedule] = []

    def schedule() -> Schedule:
        if not made:  # one per worker process, made after the fork
            made.append(Schedule.from_settings(settings))
        return made[0]

    def close(**_: Any) -> None:
        while made:
            made.pop().close()

    uid = "telepharm.schedule.close"
    signals.worker_process_shutdown.connect(close, weak=False, dispatch_uid=uid)
    signals.worker_shutdown.connect(close, weak=False, dispatch_uid=uid)

    @app.task(name=TASK, **RETRY_TRANSIENT, shared=False)
    def scheduled_notices() -> None:
        """One run of the scheduled notices if the lease is free; what it wrote is
        published for sending."""
        with transient_as_retry():
            ran = schedule().run_due()
        written = ran.written if ran is not None else []
        for start in range(0, len(written), CHUNK):
            chunk = [str(i) for i in written[start : start + CHUNK]]
            app.send_task(SEND_TASK, args=[chunk], queue=NOTIFY_QUEUE)
