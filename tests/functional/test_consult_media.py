"""Two aiortc participants hold a consult through the real hub's signaling on 127.0.0.1:
the waiting room, admission, offer and answer, then media both ways, peer to peer."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import av
import pytest
from aiortc import RTCPeerConnection
from sqlalchemy import select

from server.consults.models import ConsultRecordingRow, ConsultRow
from server.settings import Settings
from signaling.recording_store import EncryptedRecordingStore
from tests.conftest import ISSUER, Hub
from tests.functional.consult_helpers import CONSENT, scheduled
from tests.support.consult_peer import ConsultPeer
from tests.support.media import (
    MovingBarTrack,
    ToneTrack,
    answer_with,
    loopback_ice,
    sending_peer,
    until_state,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


async def _peer(hub: Hub, role: str, **join: str) -> ConsultPeer:
    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER})
    peer = ConsultPeer(role, ws)
    peer.start()
    await peer.send(type="join", **join)
    await peer.seen("joined")
    return peer


@pytest.fixture
async def peers() -> AsyncIterator[list[ConsultPeer]]:
    made: list[ConsultPeer] = []
    yield made
    for peer in made:
        await peer.close()


async def test_two_aiortc_peers_hold_a_consult(hub: Hub, peers: list[ConsultPeer]) -> None:
    consult = await scheduled(hub)
    patient = await _peer(hub, "patient", invite=consult.invite, consent_version=CONSENT)
    peers.append(patient)
    await patient.seen("waiting")
    pharmacist = await _peer(
        hub, "pharmacist", access_token=consult.pharmacist_token, consult_id=consult.id
    )
    peers.append(pharmacist)
    await pharmacist.seen("peer_joined")
    assert patient.pc is None  # the waiting room holds the patient: no offer before admission

    await pharmacist.send(type="admit")
    await patient.connected.wait()
    await pharmacist.connected.wait()
    # media flows both ways, audio and video, without passing through the hub
    assert await pharmacist.frames("video", 30) >= 30
    assert await patient.frames("video", 30) >= 30
    assert await pharmacist.frames("audio", 50) >= 50
    assert await patient.frames("audio", 50) >= 50
    async with hub.db.sessions() as session:
        state = await session.scalar(
            select(ConsultRow.state).where(ConsultRow.id == uuid.UUID(consult.id))
        )
    assert state == "in_call"

    await pharmacist.send(type="end", notes="Counselled on timing.", counselling="accepted")
    await patient.seen("ended")


async def _in_call(hub: Hub, peers: list[ConsultPeer]) -> tuple[ConsultPeer, ConsultPeer, str]:
    consult = await scheduled(hub)
    patient = await _peer(hub, "patient", invite=consult.invite, consent_version=CONSENT)
    pharmacist = await _peer(
        hub, "pharmacist", access_token=consult.pharmacist_token, consult_id=consult.id
    )
    peers.extend([patient, pharmacist])
    await pharmacist.send(type="admit")
    await patient.connected.wait()
    await pharmacist.connected.wait()
    await pharmacist.seen("peer_joined")
    for peer in (patient, pharmacist):  # each page's "media" report is in (the socket is FIFO)
        await peer.send(type="ping")
        await peer.seen("pong")
    return pharmacist, patient, consult.id


async def _record(peer: ConsultPeer) -> RTCPeerConnection:
    """What a page does on ``recording`` active: a send-only connection to the hub's
    recorder, offered complete."""
    pc = await sending_peer(MovingBarTrack(), ToneTrack())
    peer.extra.append(pc)
    await peer.send(type="record_offer", sdp=pc.localDescription.sdp)
    await answer_with(pc, (await peer.seen("record_answer"))["sdp"])
    return pc


async def test_recording_needs_both_consents_and_is_encrypted_at_rest(
    hub: Hub, peers: list[ConsultPeer], settings: Settings
) -> None:
    pharmacist, patient, consult_id = await _in_call(hub, peers)
    refused = await sending_peer(MovingBarTrack(), ToneTrack())
    patient.extra.append(refused)
    await patient.send(type="record_offer", sdp=refused.localDescription.sdp)
    assert (await patient.seen("error"))["code"] == "wrong_state"  # nobody consented yet
    await patient.send(type="recording_consent", consent=True)
    await patient.send(type="record_offer", sdp=refused.localDescription.sdp)
    await asyncio.sleep(0.5)
    assert [m["code"] for m in patient.inbox if m["type"] == "error"] == ["wrong_state"] * 2
    assert not (settings.data_dir / "recordings").exists()  # one consent is not enough

    await pharmacist.send(type="recording_consent", consent=True)
    assert (await patient.seen("recording"))["active"] is True
    assert (await pharmacist.seen("recording"))["active"] is True
    recorded = await _record(patient)
    await until_state(recorded, "connected")
    await asyncio.sleep(3)  # about 90 video and 150 audio frames
    await pharmacist.send(type="recording_consent", consent=False)  # withdrawn: it stops
    async with asyncio.timeout(10):
        while True:
            async with hub.db.sessions() as session:
                rows = list(
                    await session.scalars(
                        select(ConsultRecordingRow).where(
                            ConsultRecordingRow.consult_id == uuid.UUID(consult_id)
                        )
                    )
                )
            if rows:
                break
            await asyncio.sleep(0.2)
    (row,) = rows
    assert (row.party, row.file) == ("patient", "patient-1.webm.enc")
    path = settings.data_dir / "recordings" / consult_id / row.file
    assert path.stat().st_size == row.bytes
    assert b"\x1a\x45\xdf\xa3" not in path.read_bytes()[:64]  # no WebM header in the clear

    key = (settings.keys_dir / "recordings.key").read_bytes()
    webm = EncryptedRecordingStore(settings.data_dir / "recordings", key).read(consult_id, row.file)
    decoded: Counter[str] = Counter()
    with av.open(io.BytesIO(webm)) as container:
        kinds = {s.type for s in container.streams}
        for packet in container.demux():
            decoded[packet.stream.type] += len(packet.decode())
    assert kinds == {"audio", "video"}
    assert decoded["video"] >= 30
    assert decoded["audio"] >= 50
    assert row.video_frames >= 30


async def _recordings(hub: Hub, consult_id: str) -> list[ConsultRecordingRow]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(ConsultRecordingRow).where(
                    ConsultRecordingRow.consult_id == uuid.UUID(consult_id)
                )
            )
        )


async def test_a_dropped_socket_stops_the_recording_and_consent_is_asked_again(
    hub: Hub, peers: list[ConsultPeer]
) -> None:
    pharmacist, patient, consult_id = await _in_call(hub, peers)
    await patient.send(type="recording_consent", consent=True)
    await pharmacist.send(type="recording_consent", consent=True)
    await patient.seen("recording")
    recorded = await _record(patient)
    await until_state(recorded, "connected")
    await asyncio.sleep(1)
    resume = (await patient.seen("joined"))["resume"]
    await patient.ws.close()  # the patient's signaling drops; their recording connection lives
    async with asyncio.timeout(10):
        while not await _recordings(hub, consult_id):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    async with hub.db.sessions() as session:
        row = await session.get(ConsultRow, uuid.UUID(consult_id))
    assert row is not None
    assert (row.patient_recording_consent, row.pharmacist_recording_consent) == (None, None)
    assert any(m == {"type": "recording", "active": False} for m in pharmacist.inbox)

    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER})
    back = ConsultPeer("patient", ws)
    peers.append(back)
    back.start()
    await back.send(type="join", resume=resume)
    assert (await back.seen("joined"))["state"] == "in_call"
    await back.seen("admitted")
    assert "recording" not in [m["type"] for m in back.inbox]  # to be asked again
