"""The sending task of the notification outbox (:mod:`server.notifications`) on the workers'
Celery app."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Celery, signals

from ..notifications import QUEUE, SEND_TASK
from ..settings import Settings
from .failures import RETRY_TRANSIENT, transient_as_retry
from .publisher import publish_follow_ups

log = logging.getLogger(__name__)


def register(app: Celery, settings: Settings) -> None:
    made: list[Any] = []

    def sender() -> Any:
        """One per worker process (its SMTP event loop, its connections), made on first use:
        not before the worker forks."""
        if not made:
            from ..notifications.sending import Sender

            made.append(Sender.from_settings(settings))
        return made[0]

    def close(**_: Any) -> None:
        while made:
            made.pop().close()

    # a prefork child ends with worker_process_shutdown, a solo worker with worker_shutdown;
    # one handler each per process (a hub that makes its Celery app again replaces it)
    uid = "telepharm.notifications.close"
    signals.worker_process_shutdown.connect(close, weak=False, dispatch_uid=uid)
    signals.worker_shutdown.connect(close, weak=False, dispatch_uid=uid)

    # the database unreachable: the whole task again (attempts already concluded are finished
    # or not due, so they are not sent twice)
    @app.task(name=SEND_TASK, **RETRY_TRANSIENT, shared=False)
    def send_notifications(notification_ids: list[str]) -> None:
        """Attempt each notification that is due; publish the retries with their countdown."""
        with transient_as_retry():
            found = sender().send_many([uuid.UUID(i) for i in notification_ids])
        publish_follow_ups(app, SEND_TASK, QUEUE, found)
