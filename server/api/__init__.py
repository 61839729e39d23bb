"""``/api/v1``: the REST API for pharmacy systems and (later) the pharmacist console."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import prescriptions


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/prescriptions", prescriptions.list_prescriptions)
    app.router.add_get("/api/v1/prescriptions/{id}", prescriptions.get_prescription)
