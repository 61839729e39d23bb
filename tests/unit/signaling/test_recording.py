"""Consult recording: a real aiortc sender recorded over loopback into an encrypted WebM that
PyAV decodes; bounded buffering; the registry's cap. The file format: test_recording_format."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from av.frame import Frame
from av.packet import Packet

from signaling.recording import (
    BoundedTrack,
    Recorders,
    RecordingError,
    RecordingPeer,
    RecordingRefused,
    RecordingSummary,
    rtc_ice_server,
)
from signaling.recording_format import HEADER, RecordingCorrupt
from signaling.recording_store import EncryptedRecordingStore
from signaling.turn import IceServer
from tests.support.media import (
    MovingBarTrack,
    ToneTrack,
    answer_with,
    loopback_ice,
    sending_peer,
    until,
    until_state,
)

KEY = bytes(range(32))
WEBM_MAGIC = bytes.fromhex("1a45dfa3")
CONSULT = "c0ffee00-1234"


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


@pytest.fixture
def store(tmp_path: Path) -> EncryptedRecordingStore:
    return EncryptedRecordingStore(tmp_path, KEY)


# --- end to end -------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback")
async def test_a_sender_is_recorded_to_an_encrypted_webm(
    store: EncryptedRecordingStore, tmp_path: Path
) -> None:
    peer = RecordingPeer(CONSULT, "patient", store)
    sender = await sending_peer(MovingBarTrack(), ToneTrack())
    try:
        summary = await record_until_hangup(peer, sender)
    finally:  # on failure too, so no connection outlives the test's loop
        await sender.close()
        await peer.close()
    assert await peer.close() == summary

    assert (summary.consult_id, summary.party, summary.name) == (
        CONSULT,
        "patient",
        "patient-1.webm.enc",
    )
    assert summary.video_frames >= 60
    assert summary.audio_frames >= 60
    path = tmp_path / CONSULT / "patient-1.webm.enc"
    assert summary.bytes_written == path.stat().st_size
    assert path.stat().st_mode & 0o777 == 0o600

    plaintext = store.read(CONSULT, "patient-1.webm.enc")
    streams, decoded = decode(plaintext)
    assert streams == ["audio:opus", "video:vp8"]
    assert summary.video_frames - 5 <= decoded["VideoFrame"] <= summary.video_frames
    assert decoded["AudioFrame"] >= summary.audio_frames - 5

    ciphertext = path.read_bytes()
    assert plaintext.startswith(WEBM_MAGIC)
    assert ciphertext.startswith(HEADER)
    # Any 4 given bytes turn up in random ciphertext of this size now and then, so look for
    # the WebM's opening 64 bytes, and for its magic where it would be without encryption.
    assert plaintext[:64] not in ciphertext
    assert WEBM_MAGIC not in ciphertext[: len(HEADER) + 16 + 16]
    with pytest.raises(av.FFmpegError):
        av.open(io.BytesIO(ciphertext)).close()
    with pytest.raises(RecordingCorrupt):
        EncryptedRecordingStore(tmp_path, bytes(32)).read(CONSULT, "patient-1.webm.enc")


async def record_until_hangup(peer: RecordingPeer, sender: RTCPeerConnection) -> RecordingSummary:
    answer = await peer.accept(sender.localDescription.sdp)
    assert answer.count("a=recvonly") == 2
    assert "a=sendrecv" not in answer
    assert "typ host" in answer  # no trickle: the candidates travel in the answer
    await answer_with(sender, answer)
    await until_state(sender, "connected")
    # 2 s of video and more than 1 s of audio; counted, not timed: a busy machine is slower
    try:
        await until(lambda: min(peer.summary().video_frames, peer.summary().audio_frames) >= 60)
    except TimeoutError:
        pytest.fail(f"too little media arrived: {peer.summary()}")
    await sender.close()  # the browser hangs up: the hub's peer closes itself
    async with asyncio.timeout(5):
        return await peer.wait_closed()


def decode(webm: bytes) -> tuple[list[str], Counter[str]]:
    """The WebM's streams and how many frames of each type it decodes to."""
    with av.open(io.BytesIO(webm), mode="r") as container:
        streams = sorted(f"{s.type}:{s.codec_context.name}" for s in container.streams)
        counts = Counter(type(f).__name__ for f in container.decode(*container.streams))
    return streams, counts


@pytest.mark.usefixtures("loopback")
async def test_an_offer_without_media_is_refused_and_leaves_no_file(
    store: EncryptedRecordingStore,
) -> None:
    peer = RecordingPeer(CONSULT, "patient", store)
    with pytest.raises(RecordingError) as refused:
        await peer.accept("v=0\r\n")
    assert refused.value.code == "recording_no_media"
    assert (await peer.close()).name is None
    assert store.names(CONSULT) == []


@pytest.mark.usefixtures("loopback")
async def test_a_connection_that_never_comes_up_is_given_up(
    store: EncryptedRecordingStore, offers: Offers
) -> None:
    recorders = Recorders(store, max_active=1, connect_timeout=0.2)
    await recorders.start(CONSULT, "patient", await offers())  # the answer never reaches it
    assert recorders.active(CONSULT)
    await until(lambda: not recorders.active(CONSULT))
    [summary] = await recorders.stop(CONSULT)
    assert (summary.name, summary.video_frames, summary.audio_frames) == (
        "patient-1.webm.enc",
        0,
        0,
    )
    await recorders.start("other", "patient", await offers())  # the slot is free again
    await recorders.close()


async def test_an_invalid_offer_is_a_recording_error(store: EncryptedRecordingStore) -> None:
    peer = RecordingPeer(CONSULT, "patient", store)
    bad = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    with pytest.raises(RecordingError) as refused:
        await peer.accept(bad)
    assert refused.value.code == "recording_bad_offer"
    await peer.close()


@pytest.mark.parametrize(("consult_id", "party"), [("../etc", "patient"), (CONSULT, "nurse")])
async def test_only_plain_ids_and_the_two_parties_are_recorded(
    store: EncryptedRecordingStore, consult_id: str, party: str
) -> None:
    with pytest.raises(RecordingError):
        RecordingPeer(consult_id, party, store)
    with pytest.raises(RecordingError):
        store.open_writer(consult_id, party)


def test_ice_servers_are_passed_to_aiortc_as_given() -> None:
    server = rtc_ice_server(IceServer(("turn:turn.example:3478?transport=udp",), "1:c", "pw"))
    assert (server.urls, server.username, server.credential) == (
        ["turn:turn.example:3478?transport=udp"],
        "1:c",
        "pw",
    )


# --- bounded buffering ------------------------------------------------------------------------


class FastSource(MediaStreamTrack):
    """Frames as fast as the loop turns, numbered by pts; ends after ``limit`` if given."""

    kind = "video"

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit
        self.produced = 0

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(0)
        if self.produced == self.limit:
            raise MediaStreamError
        frame = VideoFrame(16, 16, "yuv420p")
        frame.pts = self.produced
        self.produced += 1
        return frame


def pts(frame: Frame | Packet) -> int:
    assert frame.pts is not None
    return frame.pts


async def test_a_slow_consumer_gets_recent_frames_and_the_rest_are_dropped() -> None:
    source = FastSource()
    track = BoundedTrack(source, maxlen=5)
    seen = []
    for _ in range(5):
        await asyncio.sleep(0.01)  # the encoder is slow
        assert track.buffered == 5
        seen.append(pts(await track.recv()))
    track.stop()
    await track.wait_stopped()

    assert seen == sorted(seen)
    assert seen[-1] - seen[0] > 20  # frames in between were dropped, not queued
    assert track.delivered == 5
    assert track.received == source.produced
    assert track.dropped == track.received - track.delivered - track.buffered > 100
    with pytest.raises(MediaStreamError):
        await track.recv()
    produced = source.produced
    await asyncio.sleep(0.01)
    assert source.produced == produced  # the reader stopped with the track


async def test_frames_buffered_before_the_source_ends_are_still_delivered() -> None:
    track = BoundedTrack(FastSource(limit=3), maxlen=5)
    await asyncio.sleep(0.01)
    assert [pts(await track.recv()) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"
    assert track.dropped == 0


# --- the registry -----------------------------------------------------------------------------


@pytest.fixture
async def offers() -> AsyncIterator[Offers]:
    made = Offers()
    yield made
    for pc in made.peers:
        await pc.close()


class Offers:
    """Fresh browser-like offers; no connection is needed to test the registry."""

    def __init__(self) -> None:
        self.peers: list[RTCPeerConnection] = []

    async def __call__(self) -> str:
        pc = await sending_peer(MovingBarTrack(), ToneTrack())
        self.peers.append(pc)
        return pc.localDescription.sdp


@pytest.mark.usefixtures("loopback")
async def test_recorders_cap_replace_stop_and_close(
    store: EncryptedRecordingStore, offers: Offers
) -> None:
    recorders = Recorders(store, max_active=2)
    await recorders.start(CONSULT, "pharmacist", await offers())
    await recorders.start(CONSULT, "patient", await offers())
    with pytest.raises(RecordingRefused):
        await recorders.start("other", "patient", await offers())
    assert not recorders.active("other")

    await recorders.start(CONSULT, "patient", await offers())  # a reconnect replaces
    assert recorders.active(CONSULT)
    summaries = await recorders.stop(CONSULT)
    assert sorted(s.name or "" for s in summaries) == [
        "patient-1.webm.enc",
        "patient-2.webm.enc",
        "pharmacist-1.webm.enc",
    ]
    assert not recorders.active(CONSULT)
    assert await recorders.stop(CONSULT) == []

    await recorders.start("other", "patient", await offers())  # capacity is back
    with pytest.raises(RecordingError):
        await recorders.start("third", "patient", "v=0\r\n")
    assert not recorders.active("third")
    [summary] = await recorders.close()
    assert (summary.consult_id, summary.name) == ("other", "patient-1.webm.enc")
    assert await recorders.close() == []
    assert not recorders.active("other")
    with pytest.raises(RecordingRefused):
        await recorders.start("other", "patient", await offers())
