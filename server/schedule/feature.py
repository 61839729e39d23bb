"""The scheduled notices' wiring in a hub process: its own loop of the schedule (under the
lease). The pharmacy's switches are read and changed at ``/api/v1/notifications/settings``
(:mod:`server.notifications.settings_http`)."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from .runner import schedule_ctx


def setup(app: web.Application, settings: Settings) -> None:
    """This hub process's turn at the schedule (after the worker's publisher)."""
    app.cleanup_ctx.append(schedule_ctx)
