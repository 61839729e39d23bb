"""Patients: the pharmacy's profiles (``directory.py``: linking a prescription's patient) and
``GET /api/v1/patients/{id}`` with ``POST .../allergies`` (``http.py``)."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import http


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/patients/{id}", http.get_patient)
    app.router.add_post("/api/v1/patients/{id}/allergies", http.add_allergy)
