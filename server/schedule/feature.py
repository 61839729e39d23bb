"""The scheduled notices' wiring in a hub process: its own loop of the schedule (under the
lease) and the pharmacy's switches' routes."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import http
from .runner import schedule_ctx


def setup(app: web.Application, settings: Settings) -> None:
    """This hub process's turn at the schedule (after the worker's publisher), and the
    pharmacy's switches of the events that notify."""
    app.cleanup_ctx.append(schedule_ctx)
    http.routes(app)
