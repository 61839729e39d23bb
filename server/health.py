"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from .background import BACKGROUND, STOPPED
from .db import DATABASE
from .settings import Settings
from .worker import CHECK_QUEUE

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 3.0


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The hub can do its work: the database answers within a few seconds and every background
    loop is running (503 otherwise).

    The broker is reported too, but an unreachable broker leaves the hub ready: the intake
    still stores and acknowledges messages, and their checks are queued once the broker is
    back, so taking the hub out of a load balancer would only refuse work it can do. For the
    same reason a loop that is ``failing`` (retrying after an error, usually the database's,
    which has its own check) or an embedded worker that is ``restarting`` leave the hub ready;
    a loop that has ``stopped`` will not come back without a restart of the process, so it
    makes the hub unready, for the orchestrator or the operator to see."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app[DATABASE].ping(), PROBE_TIMEOUT)
        checks["database"] = "ok"
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        checks["database"] = "unavailable"
    broker_up = await request.app[CHECK_QUEUE].reachable(PROBE_TIMEOUT)
    checks["broker"] = "ok" if broker_up else "unavailable"
    loops = request.app[BACKGROUND].status()
    checks.update(loops)
    ready = checks["database"] == "ok" and STOPPED not in loops.values()
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
