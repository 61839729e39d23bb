"""``GET /metrics``: never public by default, what it counts, and request IDs in the logs."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.logs import JsonFormatter
from server.metrics import database
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script, sample_newrx
from tests.support.processes import free_port

TOKEN = "m" * 40


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    return await response.text()


@pytest.fixture
async def metered(
    aiohttp_client: Callable[..., TestClient], settings: Settings
) -> AsyncIterator[Hub]:
    """The hub with a metrics token: /metrics answers on its own port to the bearer."""
    from server.db import Database

    app = create_app(dataclasses.replace(settings, metrics_token=TOKEN))
    client = await aiohttp_client(app)
    db = Database(settings.database_url)
    yield Hub(client, db)
    await db.close()


async def test_metrics_are_not_on_the_hub_port_by_default(client: TestClient) -> None:
    response = await client.get("/metrics")
    assert response.status == 404
    # a token does not open what is not configured
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 404


async def test_the_token_opens_metrics_on_the_hub_port(metered: Hub) -> None:
    assert (await metered.client.get("/metrics")).status == 401
    wrong = {"Authorization": "Bearer " + "x" * 40}
    response = await metered.client.get("/metrics", headers=wrong)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    text = await scrape(metered.client)
    assert value(text, "telepharm_metrics_database_up") == 1


async def test_intake_outcomes_queue_depth_and_oauth_failures_are_counted(
    metered: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "KEPT", 0.0)  # each scrape reads the database anew
    await metered.pharmacy()
    token = await metered.sender_token()
    before = await scrape(metered.client)
    accepted = {"transaction": "NewRx", "outcome": "accepted", "code": "000"}
    rejected = {"transaction": "unknown", "outcome": "rejected", "code": "500"}
    assert (await post_script(metered, sample_newrx(), token)).status == 200
    assert (await post_script(metered, b"<Message><unclosed>", token)).status == 200
    bad = await metered.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "script:send"},
        headers={"Authorization": "Basic " + "eDp5"},  # x:y, no such client
    )
    assert bad.status == 401
    after = await scrape(metered.client)
    for labels in (accepted, rejected):
        counted = "telepharm_intake_messages_total"
        assert value(after, counted, **labels) - value(before, counted, **labels) == 1
    took = "telepharm_intake_seconds_count"
    assert value(after, took, outcome="accepted") - value(before, took, outcome="accepted") == 1
    failed = "telepharm_oauth_failures_total"
    assert value(after, failed, endpoint="token") - value(before, failed, endpoint="token") == 1
    # no worker runs here: the prescription waits in the check queue (read at scrape time)
    assert value(after, "telepharm_queue_depth", queue="telepharm.checks") == 1
    assert value(after, "telepharm_queue_oldest_seconds", queue="telepharm.checks") >= 0
    assert value(after, "telepharm_queue_depth", queue="telepharm.outbound") == 0
    assert value(after, "telepharm_outbox_messages", queue="telepharm.outbound", state="dead") == 0
    assert value(after, "telepharm_consults_open", state="waiting") == 0
    assert value(after, "telepharm_db_pool_size", role="hub") >= 1


async def test_a_listener_of_its_own_serves_metrics_on_loopback(
    aiohttp_client: Callable[..., TestClient], settings: Settings
) -> None:
    port = free_port()
    client = await aiohttp_client(create_app(dataclasses.replace(settings, metrics_port=port)))
    assert (await client.get("/metrics")).status == 404  # not on the hub's port
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    assert value(text, "telepharm_metrics_database_up") == 1
    assert "telepharm_intake_messages" in text


async def test_metrics_off_means_no_endpoint_and_no_counting(
    aiohttp_client: Callable[..., TestClient], settings: Settings
) -> None:
    off = dataclasses.replace(settings, metrics=False, metrics_token=TOKEN)
    client = await aiohttp_client(create_app(off))
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 404


# -- request IDs ------------------------------------------------------------------------------


async def test_a_request_id_is_minted_answered_and_logged(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    intake = logging.getLogger("server.intake")
    intake.addHandler(handler)
    intake.setLevel(logging.INFO)
    try:
        response = await post_script(hub, b"<Message><unclosed>", token)
    finally:
        intake.removeHandler(handler)
        intake.setLevel(logging.NOTSET)
    handler_lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert handler_lines, "the rejection was not logged"
    minted = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    assert [line["request_id"] for line in handler_lines] == [minted]
    assert handler_lines[0]["message"].startswith("script rejected before parsing")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("edge-7f3a-2024-11-30T10:00:00Z", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("short", False),  # under 8 characters
        ("x" * 65, False),  # over 64
        ("has space inside", False),
        ("quote\"'<script>", False),
    ],
)
async def test_a_callers_request_id_is_kept_only_when_sane(
    client: TestClient, given: str, kept: bool
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    answered = response.headers["X-Request-ID"]
    assert (answered == given) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", answered)


async def test_error_responses_answer_the_request_id_too(client: TestClient) -> None:
    response = await client.get("/api/v1/prescriptions", headers={"X-Request-ID": "err-req-0001"})
    assert response.status == 401
    assert response.headers["X-Request-ID"] == "err-req-0001"


async def test_the_check_task_carries_the_request_ids(hub: Hub, settings: Settings) -> None:
    """The task published after the intake's commit names the request in its headers."""
    from server.worker import CHECK_QUEUE

    await hub.pharmacy()
    token = await hub.sender_token()
    published: list[dict[str, object]] = []

    from celery import signals

    def seen(headers: dict[str, object] | None = None, **_: object) -> None:
        published.append(dict(headers or {}))

    signals.before_task_publish.connect(seen, weak=False)
    try:
        response = await hub.client.post(
            "/ncpdp/script",
            data=sample_newrx(),
            headers={
                "Content-Type": "application/xml",
                "Authorization": f"Bearer {token}",
                "X-Request-ID": "carry-me-0001",
            },
        )
        assert response.status == 200
        await hub.client.app[CHECK_QUEUE].close()  # publishes what waits
    finally:
        signals.before_task_publish.disconnect(seen)
    checks = [h for h in published if h.get("task") == "telepharm.check_prescriptions"]
    assert [h["request_ids"] for h in checks] == [["carry-me-0001"]]
