"""``telepharm serve``: the hub process, with its embedded check worker unless told not to."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .collector import Collector
from .commands import CliError, Commands
from .settings import Settings, is_loopback

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("telepharm")


def register_cli(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the hub")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--no-worker", action="store_true", help="do not start the embedded check worker"
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="let several hub processes share the port (SO_REUSEPORT)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve GET /metrics on this port of TELEPHARM_METRICS_HOST (default: loopback)",
    )
    serve.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from aiohttp import web

    from . import metrics

    # refusals first: a refused serve changes nothing in the process
    if settings.demo_ehr and not is_loopback(args.host):
        # its page has no sign-in: synthetic data on a laptop, never on a network
        raise CliError(
            "TELEPHARM_DEMO_EHR is for the demo on loopback only: serve it on --host 127.0.0.1"
        )
    if args.reuse_port and not settings.redis_url:
        # each process's consult bus is in its memory: the two sides of a consult, whose
        # sockets the kernel hands to any of the processes, would never meet
        raise CliError(
            "--reuse-port needs TELEPHARM_REDIS_URL: without Redis the two sides of a consult,"
            " on different hub processes, never meet"
        )
    if args.metrics_port is not None:
        settings = dataclasses.replace(settings, metrics_port=args.metrics_port)
    # the embedded mode (one hub and its own worker) is the whole deployment: the metrics of
    # an earlier run start again; hub processes that share a port, or a hub beside separate
    # workers, leave that to `telepharm metrics reset` before the units start
    metrics.prepare_process(settings, fresh=not (args.reuse_port or args.no_worker))

    from .app import create_app
    from .logs import AccessLogger
    from .worker.embedded import embedded_worker

    _use_uvloop()
    log.info("serving on http://%s:%d (issuer %s)", args.host, args.port, settings.issuer)
    app = create_app(settings)
    app.cleanup_ctx.append(_collect_by_generations)
    if not args.no_worker:
        app.cleanup_ctx.append(embedded_worker)  # last: started after the rest, stopped first
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log_class=AccessLogger,
        print=None,
        reuse_port=args.reuse_port,
    )


async def _collect_by_generations(app: web.Application) -> AsyncIterator[None]:
    """The collector's schedule of a hub process (:mod:`server.collector`), from after start-up
    (the modules, metadata and compiled specs are its first baseline)."""
    collector = Collector()
    collector.start()
    yield
    collector.stop()


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # not on every platform; the default loop works, only slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
