"""OpenTelemetry: one trace from the HTTP request through its database statements to the check
task it enqueued, run by a worker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from celery import Celery, signals
from celery import _state as celery_state
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from server import tracing
from server.app import create_app
from server.db import Database
from server.settings import Settings
from server.worker import CHECK_QUEUE, CHECK_TASK, create_celery
from server.worker.publisher import CheckQueue
from tests.conftest import Hub
from tests.functional.intake_helpers import sample_newrx
from tests.support.processes import launch, stop, telepharm_env


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()


@pytest.fixture
async def traced(
    spans: InMemorySpanExporter, aiohttp_client: Callable[..., TestClient], settings: Settings
) -> AsyncIterator[Hub]:
    client = await aiohttp_client(create_app(dataclasses.replace(settings, tracing="console")))
    db = Database(settings.database_url)
    yield Hub(client, db)
    await db.close()


async def test_a_request_its_statements_and_its_check_task_make_one_trace(
    traced: Hub, spans: InMemorySpanExporter, settings: Settings, tmp_path: Path
) -> None:
    await traced.pharmacy()
    token = await traced.sender_token()
    spans.clear()
    response = await traced.client.post(
        "/ncpdp/script",
        data=sample_newrx(),
        headers={"Content-Type": "application/xml", "Authorization": f"Bearer {token}"},
    )
    assert response.status == 200
    queue = traced.client.app[CHECK_QUEUE]
    await queue.close()  # the check task is published now
    server = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in server] == ["POST /ncpdp/script"]
    trace_id = server[0].context.trace_id
    in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    assert any(s.attributes and "db.statement" in s.attributes for s in in_trace), in_trace
    published = [s for s in in_trace if s.kind == SpanKind.PRODUCER]
    assert [s.name for s in published] == [f"apply_async/{CHECK_TASK}"]

    # a worker process runs the task: its run is a span of the same trace (the context went
    # through the broker in the task's headers), its statements under it
    env = {**telepharm_env(settings), "TELEPHARM_TRACING": "console"}
    log = tmp_path / "worker.log"
    worker = launch(env, "worker", "--concurrency", "1", log=log)
    try:
        ran = await asyncio.to_thread(_worker_spans, log, f"run/{CHECK_TASK}")
    finally:
        stop([worker])
    (run,) = [s for s in ran if s["name"] == f"run/{CHECK_TASK}"]
    assert run["context"]["trace_id"] == f"0x{trace_id:032x}"
    under = [s for s in ran if s["parent_id"] == run["context"]["span_id"]]
    assert under, "the task's statements are not in its trace"


async def test_the_hubs_publish_is_traced_whatever_celery_app_the_process_has_elsewhere(
    spans: InMemorySpanExporter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The producer span finds its task in the hub's app, not in the process's default app
    (which other code, or an earlier test, may have made and finalized), and lasts through
    the publish; the hub's tasks do not leak into that app or any made later."""
    elsewhere = Celery("elsewhere", set_as_current=False)
    elsewhere.finalize()
    monkeypatch.setattr(celery_state, "default_app", elsewhere)
    hub = create_celery(dataclasses.replace(settings, broker_url="memory://"))
    later = Celery("later", set_as_current=False)
    for app in (elsewhere, later):
        assert not [name for name in app.tasks if name.startswith("telepharm.")]

    publishing: list[int] = []

    def publishes(**_: object) -> None:  # after the instrumentation's own receiver
        publishing.append(time.time_ns())

    signals.before_task_publish.connect(publishes, weak=False)
    try:
        queue = CheckQueue(hub, CHECK_TASK)
        queue.submit([uuid.uuid4()])
        await queue.close()
    finally:
        signals.before_task_publish.disconnect(publishes)
    published = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert [s.name for s in published] == [f"apply_async/{CHECK_TASK}"]
    # the instrumentation's span for a task it does not find ends at once, before the publish
    start, end = published[0].start_time, published[0].end_time
    assert start is not None
    assert end is not None
    assert start < publishing[0] < end


def _spans(log: Path) -> list[dict[str, Any]]:
    """The spans a process printed (one JSON line each, among its log lines)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if '"span_id"' in line]


def _worker_spans(log: Path, name: str, seconds: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        spans = _spans(log)
        if any(s["name"] == name for s in spans):
            return spans
        time.sleep(0.3)
    raise AssertionError(f"the worker logged no {name} span")
