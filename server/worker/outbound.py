"""The delivery task of the outbox (:mod:`server.outbox`) on the workers' Celery app."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Celery

from ..outbox import DELIVER_TASK, QUEUE
from ..settings import Settings
from .failures import RETRY_TRANSIENT, per_process, transient_as_retry
from .publisher import publish_follow_ups

log = logging.getLogger(__name__)


def register(app: Celery, settings: Settings) -> None:
    def make_deliverer() -> Any:
        from ..outbox.delivery import Deliverer

        return Deliverer.from_settings(settings)

    deliverer = per_process(make_deliverer)

    # the database unreachable: the whole task again (attempts already concluded are
    # finished or not due, so they are not sent twice)
    @app.task(name=DELIVER_TASK, **RETRY_TRANSIENT, shared=False)
    def deliver_outbound(message_ids: list[str]) -> None:
        """Attempt each message that is due; publish the retries (with their countdown) and
        the messages that waited behind one that finished."""
        with transient_as_retry():
            found = deliverer().deliver_many([uuid.UUID(i) for i in message_ids])
        publish_follow_ups(app, DELIVER_TASK, QUEUE, found)
