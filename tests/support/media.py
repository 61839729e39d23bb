"""Synthetic aiortc media for tests: paced video and 48 kHz audio that real encoders take, a
send-only peer as a browser would open it, and the test-only loopback ICE patch."""

from __future__ import annotations

import asyncio
import fractions
import math
import struct
import time
from collections.abc import Callable

import aioice.ice
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms, Opus's usual packet
TONE_HZ = 400  # a whole number of periods per frame, so one frame's samples repeat


def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out of its host candidates, so offline peers find no path;
    test-only, and undone with the monkeypatch."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


class MovingBarTrack(VideoStreamTrack):
    """30 fps of a bright bar sweeping over grey: every frame differs, as a camera's would."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.frames = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(self.width, self.height, "yuv420p")
        luma, *chroma = frame.planes
        bar = (self.frames * 8) % self.width
        row = bytearray([60]) * luma.line_size
        row[bar : bar + 32] = bytes([220]) * len(row[bar : bar + 32])
        luma.update(bytes(row) * self.height)
        for plane in chroma:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.frames += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 400 Hz tone in 20 ms frames at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._pts = 0
        samples = (
            int(6000 * math.sin(2 * math.pi * TONE_HZ * i / AUDIO_RATE))
            for i in range(AUDIO_SAMPLES)
        )
        self._samples = struct.pack(f"<{AUDIO_SAMPLES}h", *samples)
        self.frames = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        pts, self._pts = self._pts, self._pts + AUDIO_SAMPLES
        await asyncio.sleep(max(0.0, self._start + pts / AUDIO_RATE - time.monotonic()))
        frame = AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(self._samples.ljust(frame.planes[0].buffer_size, b"\0"))
        frame.pts, frame.sample_rate = pts, AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.frames += 1
        return frame


async def sending_peer(*tracks: MediaStreamTrack) -> RTCPeerConnection:
    """A send-only peer with its complete offer set (no STUN, no trickle), like the browser's
    recording connection."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for track in tracks:
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def answer_with(pc: RTCPeerConnection, answer_sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))


async def until_state(pc: RTCPeerConnection, state: str) -> None:
    """Wait, at most 5 s, for ``pc.connectionState`` to become ``state``."""
    reached = asyncio.Event()

    def check() -> None:
        if pc.connectionState == state:
            reached.set()

    pc.on("connectionstatechange", check)
    check()
    try:
        async with asyncio.timeout(5):
            await reached.wait()
    finally:
        pc.remove_listener("connectionstatechange", check)


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition``, for counters that have no event to wait on, for at most 15 s: a
    loaded machine encodes and decodes slower than real time."""
    async with asyncio.timeout(15):
        while not condition():  # noqa: ASYNC110 - frame counters have no event
            await asyncio.sleep(0.05)
