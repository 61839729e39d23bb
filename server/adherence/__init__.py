"""Adherence: PDC of the pharmacy's patients per measured drug class from their fills
(``read.py``), the list for outreach as JSON or CSV, and one patient's (``http.py``)."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import http, medsync, merging


def setup(app: web.Application, settings: Settings) -> None:
    merging.register()  # a patient's med sync follows their profile into a merge
    app.router.add_get("/api/v1/adherence", http.list_adherence)
    app.router.add_get("/api/v1/adherence.csv", http.list_adherence_csv)
    app.router.add_get("/api/v1/patients/{id}/adherence", http.get_patient_adherence)
    app.router.add_get("/api/v1/patients/{id}/med-sync", medsync.get_med_sync)
    app.router.add_post("/api/v1/patients/{id}/med-sync", medsync.accept_med_sync)
