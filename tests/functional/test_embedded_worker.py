"""The check worker that `telepharm serve` starts: restarted when it dies, gone when the hub is.

Real processes throughout: a `telepharm serve` beside the app in the test (which registers the
pharmacy and signs the tokens: same database, data dir, broker and issuer)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from server.prescriptions.models import Prescription
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.conftest import BROKER
from tests.functional.intake_helpers import sample_newrx
from tests.support.processes import children, free_port, running, serving, telepharm_env
from tests.support.readiness import Readiness, until_check

#: a hub's worker must be gone this soon after the hub was killed
ORPHAN_BOUND = 15.0

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    session: aiohttp.ClientSession

    async def readiness(self) -> Readiness:
        async with self.session.get(f"{self.url}/readyz") as response:
            return response.status, await response.json()

    async def newrx(self, token: str) -> None:
        async with self.session.post(
            f"{self.url}/ncpdp/script",
            data=sample_newrx(),
            headers={"Content-Type": "application/xml", "Authorization": f"Bearer {token}"},
        ) as response:
            assert b"<Status>" in await response.read()


@pytest.fixture
async def served(hub: Hub, settings: Settings, tmp_path: Path) -> AsyncIterator[Served]:
    await hub.pharmacy()
    port = free_port()
    env = telepharm_env(dataclasses.replace(settings, broker_url=BROKER))
    log = tmp_path / "hub.log"
    with serving(env, port, log) as process:
        async with aiohttp.ClientSession() as session:
            yield Served(process, f"http://127.0.0.1:{port}", session)


async def _until(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


def _worker_of(hub_pid: int) -> int:
    found = children(hub_pid)
    return found[0] if len(found) == 1 else 0


async def _all_reviewed(hub: Hub, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with hub.db.sessions() as session:
            states = list(await session.scalars(select(Prescription.state)))
        if len(states) == count and set(states) == {"awaiting_review"}:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not all checked: {states}")


async def test_a_killed_worker_is_restarted_and_checks_go_on(hub: Hub, served: Served) -> None:
    token = await hub.sender_token()
    first = await _until(lambda: _worker_of(served.process.pid), 30, "the worker starts")
    assert (await served.readiness())[1]["checks"]["worker"] == "ok"
    os.kill(first, signal.SIGKILL)
    _, readiness = await until_check(served.readiness, "worker", "restarting", 5)
    assert readiness["status"] == "ok"  # the hub still takes messages meanwhile
    second = await _until(lambda: _worker_of(served.process.pid), 30, "a new worker starts")
    assert second != first
    assert not running(first)  # reaped: no zombie left
    await served.newrx(token)
    await _all_reviewed(hub, 1)
    # ok again once the new worker has lived a while
    await until_check(served.readiness, "worker", "ok", 30)


async def test_the_worker_of_a_killed_hub_goes_with_it(served: Served) -> None:
    worker = await _until(lambda: _worker_of(served.process.pid), 30, "the worker starts")
    try:
        served.process.kill()
        served.process.wait(10)
        started = time.monotonic()
        await _until(lambda: not running(worker), ORPHAN_BOUND, "the orphaned worker stops")
        print(f"the worker stopped {time.monotonic() - started:.1f} s after its hub was killed")
    finally:
        if running(worker):
            os.kill(worker, signal.SIGKILL)
