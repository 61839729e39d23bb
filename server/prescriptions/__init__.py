"""Prescriptions: the queue and one prescription (``queue.py``), the verification actions
(``actions.py``), the one writer of their state (``store.py``) and the intake's batched
writer of new ones (``writer.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..db import DATABASE
from ..notifications import TRIGGERS
from ..outbox import DELIVER
from ..settings import Settings
from . import actions, queue
from .store import PRESCRIPTIONS, RECHECK, PrescriptionStore


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    notify = app.get(TRIGGERS)
    app[PRESCRIPTIONS] = PrescriptionStore(
        app[DATABASE], app.get(RECHECK), app.get(DELIVER), notify
    )
    yield


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(_store_ctx)
    app.router.add_get("/api/v1/prescriptions", queue.list_prescriptions)
    app.router.add_get("/api/v1/prescriptions/{id}", queue.get_prescription)
    app.router.add_get("/api/v1/prescriptions/{id}/revision", queue.prescription_revision)
    app.router.add_get("/api/v1/queue/revision", queue.queue_revision)
    for name, handler in actions.ACTIONS.items():
        app.router.add_post(f"/api/v1/prescriptions/{{id}}/{name}", handler)
