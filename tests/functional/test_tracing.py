"""OpenTelemetry: one trace from the HTTP request through its database statements to the check
task it enqueued, run by a worker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from server import tracing
from server.app import create_app
from server.db import Database
from server.settings import Settings
from server.worker import CHECK_QUEUE, CHECK_TASK
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


@pytest.mark.xfail(
    reason="passes alone; after other tests in the same process the task's publish makes no"
    " producer span (under investigation: the order dependence, not the tracing, is the fault)",
    strict=False,
)
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
