"""The application factory: wiring only, no I/O until the app starts."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from . import api, auth, consults, health, intake, logs, webclient, worker
from .background import BACKGROUND, Supervisor
from .db import DATABASE, Database
from .errors import error_middleware
from .http import PROXIES, ProxyTrust, response_headers
from .settings import SETTINGS, Settings


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    database = Database(app[SETTINGS].database_url)
    app[DATABASE] = database
    yield
    await database.close()


def create_app(settings: Settings) -> web.Application:
    # The body limit is enforced per endpoint as well; this is the ceiling for all of them.
    # Bodies are decoded by read_body, within their size limit (aiohttp's own decoding would
    # hand handlers more bytes than the Content-Length they check).
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=settings.max_message_bytes,
        handler_args={"auto_decompress": False},
    )
    app.on_response_prepare.append(response_headers)
    app[SETTINGS] = settings
    app[PROXIES] = ProxyTrust(settings.trusted_proxies)
    app[BACKGROUND] = Supervisor()  # features add their loops to it as they start
    # Resources open in order and close in reverse: the database first, features after it.
    app.cleanup_ctx.append(logs.flush_periodically)
    app.cleanup_ctx.append(_database_ctx)
    health.setup(app, settings)
    auth.setup(app, settings)
    worker.setup(app, settings)  # before the intake, which publishes to it
    intake.setup(app, settings)
    api.setup(app, settings)
    consults.setup(app, settings)  # after the API: its store and the OAuth service
    webclient.setup(app, settings)
    return app
