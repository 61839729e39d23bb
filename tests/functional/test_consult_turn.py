"""TURN for real: coturn with use-auth-secret on 127.0.0.1, and two aiortc participants forced
to relay with the credentials the hub minted for their consult. Forged or expired credentials
get no relay, so a relay-only call cannot connect with them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from server.app import create_app
from server.db import Database
from server.settings import Settings
from signaling import turn
from tests.conftest import ISSUER, Hub
from tests.functional.consult_helpers import CONSENT, scheduled
from tests.support import coturn
from tests.support.consult_peer import ConsultPeer
from tests.support.media import MovingBarTrack

SECRET = "a-test-turn-secret"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not coturn.available(), reason="needs coturn (apt-get install coturn)"),
]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[coturn.Turn]:
    with coturn.coturn(tmp_path, SECRET) as server:
        yield server


@pytest.fixture
async def turn_hub(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    settings: Settings,
    db: Database,
    relay: coturn.Turn,
) -> Hub:
    configured = replace(settings, turn_urls=(relay.url,), turn_secret=relay.secret)
    return Hub(await aiohttp_client(create_app(configured)), db)


async def _relay_peer(hub: Hub, role: str, **join: str) -> ConsultPeer:
    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER})
    peer = ConsultPeer(role, ws, relay_only=True)
    peer.start()
    await peer.send(type="join", **join)
    await peer.seen("joined")
    return peer


async def test_a_relay_only_call_connects_with_the_minted_credentials(turn_hub: Hub) -> None:
    consult = await scheduled(turn_hub)
    patient = await _relay_peer(turn_hub, "patient", invite=consult.invite, consent_version=CONSENT)
    pharmacist = await _relay_peer(
        turn_hub, "pharmacist", access_token=consult.pharmacist_token, consult_id=consult.id
    )
    try:
        await pharmacist.send(type="admit")
        (server,) = (await patient.seen("admitted"))["ice_servers"]
        expiry, consult_id = server["username"].split(":")
        assert consult_id == consult.id
        assert int(expiry) > dt.datetime.now(dt.UTC).timestamp()
        assert SECRET not in str(server)  # only the HMAC of it
        await patient.connected.wait()
        await pharmacist.connected.wait()
        assert "typ relay" in patient.local_sdp
        assert "typ host" not in patient.local_sdp  # nothing but the relay was offered
        assert await pharmacist.frames("video", 30) >= 30
        assert await patient.frames("video", 30) >= 30
    finally:
        await patient.close()
        await pharmacist.close()


async def _relay_candidates(relay: coturn.Turn, username: str, credential: str) -> str:
    pc = RTCPeerConnection(
        RTCConfiguration(
            iceServers=[RTCIceServer(relay.url, username, credential)],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
    )
    try:
        pc.addTrack(MovingBarTrack())
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_forged_or_expired_credentials_get_no_relay(relay: coturn.Turn) -> None:
    now = dt.datetime.now(dt.UTC)
    username, credential = turn.mint(SECRET, "consult-1", now)
    assert "typ relay" in await _relay_candidates(relay, username, credential)
    forged = turn.credential_for("another-secret", username)
    assert "typ relay" not in await _relay_candidates(relay, username, forged)
    old_name, old_credential = turn.mint(SECRET, "consult-1", now - dt.timedelta(hours=3))
    assert "typ relay" not in await _relay_candidates(relay, old_name, old_credential)
