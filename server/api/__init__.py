"""``/api/v1``: the REST API for pharmacy systems and the pharmacist console."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import consults, staff


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/consults", consults.list_consults)
    app.router.add_post("/api/v1/consults", consults.create_consult)
    app.router.add_post("/api/v1/invites/check", consults.check_invite)
    app.router.add_get("/api/v1/consults/{id}", consults.get_consult)
    app.router.add_post("/api/v1/consults/{id}/cancel", consults.cancel_consult)
    app.router.add_get("/api/v1/users", staff.list_staff)
    app.router.add_patch("/api/v1/users/{id}", staff.update_staff)
