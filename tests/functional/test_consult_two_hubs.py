"""Two hub processes sharing Redis: the patient on one, the pharmacist on the other, and the
call still connects (the signaling bus carries everything between them)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.db import Database
from server.settings import Settings
from tests.conftest import ISSUER, Hub
from tests.functional.consult_helpers import CONSENT, scheduled
from tests.support.consult_peer import ConsultPeer
from tests.support.media import loopback_ice
from tests.support.processes import free_port, serving

REDIS_URL = os.environ.get("TELEPHARM_TEST_REDIS_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="needs TELEPHARM_TEST_REDIS_URL"),
]


@pytest.fixture
async def redis_hub(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, db: Database
) -> Hub:
    return Hub(await aiohttp_client(create_app(replace(settings, redis_url=REDIS_URL))), db)


@pytest.fixture
def other_hub(redis_hub: Hub, settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A second `telepharm serve` on the same database, data dir and Redis; its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(
        TELEPHARM_DATA_DIR=str(settings.data_dir),
        TELEPHARM_DATABASE_URL=settings.database_url,
        TELEPHARM_REDIS_URL=REDIS_URL,
        TELEPHARM_ISSUER=ISSUER,  # the same public URL: one hub, two processes behind it
        TELEPHARM_LOG_LEVEL="WARNING",
    )
    with serving(env, port, tmp_path / "other-hub.log", "--no-worker"):
        yield f"http://127.0.0.1:{port}"


async def test_a_call_across_two_hub_processes(
    redis_hub: Hub, other_hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback_ice(monkeypatch)
    consult = await scheduled(redis_hub)
    async with aiohttp.ClientSession() as session:
        pharmacist_ws = await redis_hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER})
        patient_ws = await session.ws_connect(f"{other_hub}/ws/consult", headers={"Origin": ISSUER})
        pharmacist, patient = (
            ConsultPeer("pharmacist", pharmacist_ws),
            ConsultPeer("patient", patient_ws),
        )
        try:
            for peer in (pharmacist, patient):
                peer.start()
            await pharmacist.send(
                type="join", access_token=consult.pharmacist_token, consult_id=consult.id
            )
            await pharmacist.seen("joined")
            await patient.send(type="join", invite=consult.invite, consent_version=CONSENT)
            await patient.seen("waiting")
            assert (await pharmacist.seen("peer_joined"))["role"] == "patient"
            assert (await patient.seen("peer_joined"))["role"] == "pharmacist"
            await pharmacist.send(type="admit")
            await patient.connected.wait()
            await pharmacist.connected.wait()
            assert await pharmacist.frames("video", 30) >= 30
            assert await patient.frames("video", 30) >= 30
            await pharmacist.send(type="end", notes="Counselled.", counselling="accepted")
            await patient.seen("ended")  # decided on one process, told on the other
        finally:
            await pharmacist.close()
            await patient.close()
