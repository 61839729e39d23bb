"""A consult participant as a browser page is one, in aiortc: the signaling socket of
docs/signaling.md plus a peer connection to the other side, sending synthetic camera and
microphone tracks and counting the frames it receives.

The patient's page makes the offer once admitted; the pharmacist's page answers. aiortc does
not trickle: its SDP carries every candidate, and candidates that do arrive as ``ice``
messages are added all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from tests.support.media import MovingBarTrack, ToneTrack


class ConsultPeer:
    def __init__(
        self,
        role: str,
        ws: aiohttp.ClientWebSocketResponse,
        relay_only: bool = False,
    ) -> None:
        self.role = role
        self.ws = ws
        self.relay_only = relay_only
        self.received: Counter[str] = Counter()
        self.inbox: list[dict[str, Any]] = []
        self.pc: RTCPeerConnection | None = None
        self.connected = asyncio.Event()
        self.ice_servers: list[dict[str, Any]] = []
        self.local_sdp = ""
        #: monotonic times of the offer (sent or received) and of the connection, for benchmarks
        self.offered_at: float | None = None
        self.connected_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: more connections of this page (to the recorder), closed with it
        self.extra: list[RTCPeerConnection] = []
        self._reader: asyncio.Task[None] | None = None

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def seen(self, kind: str, wait: float = 10.0) -> dict[str, Any]:
        """The first message of type ``kind`` received so far, or the next one to come."""
        async with asyncio.timeout(wait):
            while True:
                for message in self.inbox:
                    if message["type"] == kind:
                        return message
                await asyncio.sleep(0.02)

    async def frames(self, kind: str, at_least: int, wait: float = 15.0) -> int:
        # the counters are bumped by the track readers: poll them as a page polls getStats
        async with asyncio.timeout(wait):
            while self.received[kind] < at_least:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return self.received[kind]

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            self.inbox.append(message)
            await self._on(message)

    async def _on(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "admitted":
            self.ice_servers = message["ice_servers"]
            if self.role == "patient":
                await self._offer()
        elif kind == "offer":
            await self._answer(message["sdp"])
        elif kind == "answer" and self.pc is not None:
            await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
        elif kind == "ice" and self.pc is not None and message["candidate"]:
            candidate = candidate_from_sdp(message["candidate"].removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = message["sdpMid"], message["sdpMLineIndex"]
            await self.pc.addIceCandidate(candidate)

    def _peer(self) -> RTCPeerConnection:
        servers = [
            RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
            for s in self.ice_servers
        ]
        config = RTCConfiguration(iceServers=servers)
        if self.relay_only:
            config.iceTransportPolicy = RTCIceTransportPolicy.RELAY
        pc = RTCPeerConnection(config)
        pc.addTrack(MovingBarTrack())
        pc.addTrack(ToneTrack())

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            task = asyncio.create_task(self._count(track))
            self._tasks.add(task)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                self.connected_at = time.monotonic()
                self.connected.set()
                await self.send(type="media", connected=True)
            elif pc.connectionState == "failed":
                await self.send(type="media", connected=False)

        self.pc = pc
        return pc

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.received[track.kind] += 1

    async def _offer(self) -> None:
        pc = self._peer()
        await pc.setLocalDescription(await pc.createOffer())
        self.local_sdp = pc.localDescription.sdp
        self.offered_at = time.monotonic()
        await self.send(type="offer", sdp=self.local_sdp)

    async def _answer(self, sdp: str) -> None:
        self.offered_at = time.monotonic()
        pc = self._peer()
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self.local_sdp = pc.localDescription.sdp
        await self.send(type="answer", sdp=self.local_sdp)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        for task in self._tasks:
            task.cancel()
        for pc in [self.pc, *self.extra]:
            if pc is not None:
                await pc.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self.ws.closed:
            await self.ws.close()
