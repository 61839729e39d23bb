"""Staff of a pharmacy over ``/api/v1``: its pharmacy admins list the users and change their
roles and controlled-substance permissions (:mod:`.http`). Accounts themselves are made and
disabled by operators with ``telepharm user`` (:mod:`server.users`)."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import http


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/users", http.list_staff)
    app.router.add_patch("/api/v1/users/{id}", http.update_staff)
