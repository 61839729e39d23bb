"""Inventory: each pharmacy's stock by product (NDC), lot and expiry; receiving, counts,
reorder points, recalls, and the movements a fill makes (``store.take``, ``store.put_back``);
the log of a product's movements, which for Schedule II is its perpetual inventory.

``store.py`` is the one writer of the stock; ``service.py`` runs the inventory's own actions
audited; ``http.py`` is the API, ``cli.py`` the ``telepharm stock`` commands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..db import DATABASE
from ..settings import Settings
from . import fills, http
from .service import INVENTORY, Inventory


async def _inventory_ctx(app: web.Application) -> AsyncIterator[None]:
    app[INVENTORY] = Inventory(app[DATABASE])
    yield


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(_inventory_ctx)
    fills.register()  # the fill flow checks, takes and puts back stock
    app.router.add_get("/api/v1/inventory", http.list_inventory)
    app.router.add_post("/api/v1/inventory/receipts", http.receive_stock)
    app.router.add_post("/api/v1/inventory/adjustments", http.adjust_stock)
    app.router.add_put("/api/v1/inventory/products/{ndc11}", http.set_reorder_point)
    app.router.add_get("/api/v1/inventory/products/{ndc11}/log", http.product_log)
