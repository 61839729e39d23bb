"""The fill flow's wiring: its store, routes (the label's too), the label's submit check and
the return-to-stock sweep (a supervised loop
of the hub, beside the checks' and the outbox's sweeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..background import BACKGROUND
from ..db import DATABASE
from ..notifications import TRIGGERS
from ..outbox import DELIVER
from ..prescriptions.expiry import load_expiry_rules
from ..settings import SETTINGS, Settings
from . import http, label_http, labelling, photos, shipping
from .store import FILLS, FillStore

#: how often the hub looks for ready fills to return to stock (seconds)
SWEEP_INTERVAL = 600.0
#: a pass that takes longer is abandoned and retried
PASS_TIMEOUT = 120.0


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = FillStore(
        app[DATABASE],
        app.get(DELIVER),
        return_after_days=settings.return_to_stock_days,
        expiry=load_expiry_rules(settings.expiry_rules_file),
        notify=app.get(TRIGGERS),
    )
    app[FILLS] = store
    async with app[BACKGROUND].every(
        "return_to_stock", SWEEP_INTERVAL, store.sweep, timeout=PASS_TIMEOUT
    ):
        yield


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(_store_ctx)
    http.routes(app)
    label_http.routes(app)
    shipping.routes(app)  # a ready fill shipped to a delivery patient, then delivered
    labelling.register()  # the submit needs the label, printed
    photos.setup(app)  # the fill's images: the vault, their routes, required before submit
