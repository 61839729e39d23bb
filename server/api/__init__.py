"""``/api/v1`` patients (prescriptions, consults and staff are added by their own
features)."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import patients


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/patients/{id}", patients.get_patient)
