"""The validation queue when the database or the broker goes away: the sweep lives through a
database cut and says so in readiness, and the backlog of a broker outage is queued as soon as
the broker is back. Cuts go through a TCP proxy the test starts (PostgreSQL and Redis only:
SQLite and the embedded broker are files)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url

from server.app import create_app
from server.background import BACKGROUND, Supervisor
from server.db import Database
from server.prescriptions import store
from server.prescriptions.models import Prescription
from server.settings import Settings
from server.worker import QUEUE, create_celery
from server.worker.checking import Checker
from server.worker.sweep import Sweep
from tests.conftest import Hub
from tests.functional.check_helpers import someone
from tests.functional.conftest import BROKER
from tests.functional.intake_helpers import post_script, sample_newrx
from tests.functional.verification_helpers import reviewable
from tests.support.faultproxy import FaultProxy
from tests.support.readiness import Readiness, until_check

#: a broker nobody answers on (the discard port)
NO_BROKER = "redis://127.0.0.1:9/0"
#: how soon the backlog of a broker outage must be queued once the broker is back. Before, it
#: waited for the sweep to find it stuck: 60 s at the least, then 500 per 30 s
DRAIN_BOUND = 10.0

pytestmark = pytest.mark.slow


async def _readiness(hub: Hub) -> Readiness:
    response = await hub.client.get("/readyz")
    return response.status, await response.json()


async def _until_loop(hub: Hub, name: str, state: str) -> int:
    """The status code of readiness once loop ``name`` shows ``state``."""
    status, _ = await until_check(lambda: _readiness(hub), name, state)
    return status


async def _prescription_ids(db: Database) -> set[uuid.UUID]:
    async with db.sessions() as session:
        return set(await session.scalars(select(Prescription.id)))


async def _state(db: Database) -> str:
    async with db.sessions() as session:
        return (await session.scalars(select(Prescription.state))).one()


async def test_the_sweep_lives_through_a_database_cut(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    queue_settings: Settings,
    db: Database,
    worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    """asyncpg reports a cut network as ConnectionResetError / OSError, which once ended the
    sweep for good, silently: a prescription left behind was never queued again."""
    url = make_url(queue_settings.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("SQLite is a file: nothing to cut")
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port)
        settings = dataclasses.replace(
            queue_settings, database_url=through_proxy.render_as_string(hide_password=False)
        )
        hub = Hub(await aiohttp_client(create_app(settings)), db)
        await hub.pharmacy()
        await post_script(hub, sample_newrx(), await hub.sender_token())
        proxy.cut()
        assert await _until_loop(hub, "sweep", "failing") == 503  # the database is away
        proxy.restore()
        assert await _until_loop(hub, "sweep", "ok") == 200
        # only the sweep can queue it now: what was published before is thrown away
        create_celery(queue_settings).control.purge()
        worker()
        async with asyncio.timeout(60):
            while await _state(db) != "awaiting_review":  # noqa: ASYNC110
                await asyncio.sleep(0.2)


async def test_readiness_shows_a_failing_loop_and_a_stopped_one(hub: Hub) -> None:
    loops: Supervisor = hub.client.server.app[BACKGROUND]
    status, body = await _readiness(hub)
    assert (status, body["checks"]) == (
        200,
        {
            "database": "ok",
            "broker": "ok",
            "log_flush": "ok",
            "oauth_failure_summary": "ok",
            "sweep": "ok",
            "outbox_sweep": "ok",
            "notify_sweep": "ok",
            "scheduled_notices": "ok",
            "return_to_stock": "ok",
            "consult_heartbeat": "ok",
            "consult_housekeeping": "ok",
        },
    )

    def broken() -> None:
        raise OSError("no route")

    async with loops.every("probe", 0.05, broken):
        # failing: it retries by itself, and the hub can still take messages
        assert await _until_loop(hub, "probe", "failing") == 200
    status, body = await _readiness(hub)
    assert status == 503  # stopped: nothing brings it back but a restart
    assert body["checks"]["probe"] == "stopped"
    assert body["checks"]["sweep"] == "ok"


class Recorder:
    """A check queue that only remembers what it was given."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []

    def submit(self, ids: Iterable[uuid.UUID]) -> None:
        self.ids.extend(ids)


async def test_one_sweep_queues_a_backlog_of_many_batches(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, db: Database
) -> None:
    hub = Hub(
        await aiohttp_client(create_app(dataclasses.replace(settings, broker_url=NO_BROKER))), db
    )
    await hub.pharmacy()
    token = await hub.sender_token()
    for _ in range(25):
        await post_script(hub, sample_newrx(), token)
    found = Recorder()
    sweep = Sweep(db, found, stuck_after=0.5, batch=10)
    await asyncio.sleep(0.5)  # all stuck now
    assert await sweep() == 25  # three queries, one pass
    assert sorted(found.ids) == sorted(await _prescription_ids(db))
    assert await sweep() == 0  # queued just now: not again
    await asyncio.sleep(0.5)
    assert await sweep() == 25  # still stuck a while later: again
    # a backlog the workers are slow to reach is not queued each pass: each time it is
    # still stuck, the wait before the next is twice as long
    await asyncio.sleep(0.55)  # past the first wait, well within the second (1 s)
    assert await sweep() == 0
    await asyncio.sleep(0.5)
    assert await sweep() == 25


def _queued(redis: Redis) -> set[uuid.UUID]:
    """The prescription IDs in the check tasks waiting in the broker (Celery's message
    protocol 2: a base64 JSON body of [args, kwargs, embed])."""
    ids: set[uuid.UUID] = set()
    for raw in redis.lrange(QUEUE, 0, -1):
        body: list[Any] = json.loads(base64.b64decode(json.loads(raw)["body"]))
        ids.update(uuid.UUID(i) for i in body[0][0])
    return ids


@pytest.mark.skipif(not BROKER.startswith("redis://"), reason="needs TELEPHARM_TEST_BROKER_URL")
async def test_the_backlog_of_a_broker_outage_is_queued_soon_after_it_ends(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, db: Database
) -> None:
    broker = urlsplit(BROKER)
    redis = Redis.from_url(BROKER)
    redis.delete(QUEUE)
    with FaultProxy(broker.hostname or "127.0.0.1", broker.port or 6379) as proxy:
        proxied = broker._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        # the sweep as in production: every 30 s, for what has been stuck for a minute
        hub = Hub(
            await aiohttp_client(create_app(dataclasses.replace(settings, broker_url=proxied))), db
        )
        await hub.pharmacy()
        token = await hub.sender_token()
        proxy.cut()
        for _ in range(10):
            await asyncio.gather(*(post_script(hub, sample_newrx(), token) for _ in range(20)))
        stored = await _prescription_ids(db)
        assert len(stored) == 200
        assert not _queued(redis)
        proxy.restore()
        started = time.monotonic()
        async with asyncio.timeout(DRAIN_BOUND):
            while not stored <= _queued(redis):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        print(f"200 checks queued {time.monotonic() - started:.1f} s after the broker returned")
    redis.delete(QUEUE)
    redis.close()


async def test_the_sweep_queues_findings_left_stale(hub: Hub, settings: Settings) -> None:
    """A change of a patient's picture whose re-check was lost (a hub that died before it
    published) is found by the sweep once it is older than ``stuck_after``."""
    checker = Checker.from_settings(settings)
    try:
        stale = await reviewable(hub, checker)
        fresh = await reviewable(hub, checker, **someone(3))
    finally:
        checker.close()
    found = Recorder()
    sweep = Sweep(hub.db, found, stuck_after=0.3, batch=10)
    assert await sweep() == 0
    async with hub.db.sessions() as session:
        patient = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == stale)
        )
    async with hub.db.transaction() as session:
        assert await session.run_sync(store.picture_changed, [patient]) == [stale]
    assert await sweep() == 0  # just changed: the worker or the hub queues it
    await asyncio.sleep(0.4)
    assert await sweep() == 1
    assert found.ids == [stale]
    assert fresh not in found.ids
