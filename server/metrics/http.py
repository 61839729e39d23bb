"""``GET /metrics`` (operators only, Prometheus text format), never public by default.

- On the hub's own port it answers 404, like any path that does not exist, unless
  ``TELEPHARM_METRICS_TOKEN`` is set: then a request with ``Authorization: Bearer <token>``
  gets the metrics and any other 401.
- ``TELEPHARM_METRICS_PORT`` (or ``telepharm serve --metrics-port``) opens a listener of its
  own on ``TELEPHARM_METRICS_HOST`` (loopback unless a token is set, which it then asks for
  too) serving ``/metrics`` only. Hub processes sharing a port (``--reuse-port``) share this
  one the same way; whichever answers reads every process's values.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from prometheus_client import Metric

from ..db import DATABASE, ENGINE_HOOKS
from ..settings import SETTINGS, Settings
from . import OBSERVER, multiprocess_dir, observer, process_metrics, sweep_dead
from .database import DatabaseGauges, Reading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def setup(app: web.Application, settings: Settings) -> None:
    """The observer every feature reports to (before them and the database it watches)."""
    app[OBSERVER] = watching = observer(settings)
    if settings.metrics:
        ENGINE_HOOKS["metrics"] = lambda engine: watching.engine(engine, "hub")


def serve(app: web.Application, settings: Settings) -> None:
    """``/metrics`` on the hub's port, and its own listener (after the database opens)."""
    if settings.metrics:
        app.cleanup_ctx.append(_gauges_ctx)
    app.router.add_get("/metrics", _on_hub_port)


async def _gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    app[GAUGES] = DatabaseGauges(app[DATABASE])
    settings = app[SETTINGS]
    if not settings.metrics_port:
        yield
        return
    listener = web.Application()
    listener[GAUGES] = app[GAUGES]
    listener[SETTINGS] = settings
    listener.router.add_get("/metrics", _on_own_port)
    runner = web.AppRunner(listener, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.metrics_host, settings.metrics_port, reuse_port=True, backlog=16
    )
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


async def _on_hub_port(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.metrics or not settings.metrics_token:
        raise web.HTTPNotFound()
    _authorised(request, settings.metrics_token)
    return await _exposition(request.app[GAUGES])


async def _on_own_port(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token:
        _authorised(request, token)
    return await _exposition(request.app[GAUGES])


def _authorised(request: web.Request, token: str) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


async def _exposition(gauges: DatabaseGauges) -> web.Response:
    from prometheus_client import CollectorRegistry, generate_latest

    reading = await gauges.reading()
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client.multiprocess import MultiProcessCollector

        sweep_dead(directory)
        MultiProcessCollector(registry, str(directory))
        body = generate_latest(registry)
    else:  # one process (tests): its own registry
        body = generate_latest(process_metrics().registry)
    database = CollectorRegistry(auto_describe=False)
    database.register(_Collected(reading))
    body += generate_latest(database)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


class _Collected:
    """A reading as a prometheus-client collector."""

    def __init__(self, reading: Reading) -> None:
        self._reading = reading

    def collect(self) -> Iterator[Metric]:
        yield from self._reading.families()


#: the database gauges of this process (kept a few seconds between scrapes)
GAUGES: web.AppKey[DatabaseGauges] = web.AppKey("metrics_gauges", DatabaseGauges)
