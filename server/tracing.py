"""OpenTelemetry tracing (docs/operations.md), off unless ``TELEPHARM_TRACING`` says where
spans go: ``console`` (stderr) or ``otlp`` (``TELEPHARM_OTLP_ENDPOINT``, OTLP over HTTP).

A traced request has a server span (:func:`middlewares`: the caller's ``traceparent`` is
its parent), a span for each database statement (every
engine of the process), and the Celery tasks it enqueued carry its context in their headers:
the publish and the task's run are spans of the same trace, in the hub and in the worker.
The packages come with the ``otel`` extra (``pip install telepharm-hub[otel]``).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .db import ENGINE_HOOKS
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy import Engine

log = logging.getLogger(__name__)
#: probes and scrapes, every few seconds, would drown the requests that matter
UNTRACED = frozenset({"/metrics", "/healthz", "/readyz"})

#: the process's tracer provider, once tracing is set up
_provider: TracerProvider | None = None


def configure(settings: Settings, service: str) -> None:
    """Trace this process (``service``: its name in the traces) when tracing is on; once."""
    if not settings.tracing or _provider is not None:
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as missing:
        raise SettingsError(
            "TELEPHARM_TRACING needs the otel extra: pip install 'telepharm-hub[otel]'"
        ) from missing
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    install(provider)


def _exporter(settings: Settings) -> SpanExporter:
    if settings.tracing == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # a span a line, beside the JSON log lines
        return ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(None) + "\n")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otlp_endpoint)


def install(provider: TracerProvider) -> None:
    """Trace with ``provider``: the requests of every application made from now on, the
    tasks this process publishes and runs, and the statements of every engine it makes."""
    global _provider
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    _provider = provider
    trace.set_tracer_provider(provider)  # for libraries that ask for the global one
    CeleryInstrumentor().instrument(tracer_provider=provider)
    ENGINE_HOOKS["tracing"] = _trace_engine


def uninstall() -> None:
    """Stop tracing what comes next (tests)."""
    global _provider
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    if _provider is None:
        return
    CeleryInstrumentor().uninstrument()
    ENGINE_HOOKS.pop("tracing", None)
    _provider = None


def _trace_engine(engine: Engine) -> None:
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeter

    assert _provider is not None
    tracer = _provider.get_tracer("telepharm.db")
    usage = NoOpMeter("telepharm.db").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine, usage)


def middlewares(settings: Settings) -> list[Any]:
    """The middleware that makes each request a server span (none: tracing off). The
    instrumentation package's own wraps the application in a subclass, which aiohttp
    deprecates; this one is the same few calls of the OpenTelemetry API."""
    if not settings.tracing or _provider is None:
        return []
    return [_server_spans(_provider)]


def _server_spans(provider: TracerProvider) -> Any:
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = provider.get_tracer("telepharm.http")

    @web.middleware
    async def server_span(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in UNTRACED:
            return await handler(request)
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route is not None else 'unmatched'}"
        attributes = {
            "http.request.method": request.method,
            "http.route": route.canonical if route is not None else "",
            "url.scheme": request.scheme,
        }
        with tracer.start_as_current_span(
            name,
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            try:
                response = await handler(request)
            except web.HTTPException as answer:
                span.set_attribute("http.response.status_code", answer.status)
                raise
            status = response.status
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    return server_span
