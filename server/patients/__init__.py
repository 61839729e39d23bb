"""Patients: the pharmacy's profiles (``directory.py``: linking a prescription's patient),
``GET /api/v1/patients`` (the search), ``GET /api/v1/patients/{id}`` with its allergy
entries (``http.py``). ``GET .../timeline`` (``timeline.py``) is wired by its own ``setup``:
it reads consults' and notifications' tables, whose models refer to the profiles, so
importing it from the package would make a cycle."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import http


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/patients", http.search_patients)
    app.router.add_get("/api/v1/patients/{id}", http.get_patient)
    app.router.add_post("/api/v1/patients/{id}/allergies", http.add_allergy)
    app.router.add_delete("/api/v1/patients/{id}/allergies/{allergy}", http.remove_allergy)
