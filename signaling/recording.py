"""Consented consult recording: a receive-only aiortc peer per party, writing WebM encrypted at
rest.

Only while both parties consent (:attr:`signaling.consults.Consult.recording_allowed`) does each
browser open a second, send-only connection to the hub. :class:`RecordingPeer` answers it
receive-only and feeds every track, through a :class:`BoundedTrack`, to aiortc's
``MediaRecorder``, which re-encodes to WebM (VP8 + Opus) on the event loop: about a third of a
core per party, hence the cap in :class:`Recorders`, the registry an app keeps.

The muxer's bytes never reach the disk in clear: it writes into a
:class:`~signaling.recording_store.RecordingStore`'s writer, which encrypts as it goes
(:mod:`signaling.recording_format`). The muxer gets a non-seekable output: matroska then writes
a streamable file (no cues, no duration) instead of seeking back to patch headers.

Limits: audio and video each start at timestamp 0 (aiortc rebases RTP time per track), so lip
sync is only as good as the gap between the first audio and first video frame; aiortc exposes
no RTCP sender reports to do better.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

from signaling.recording_format import RecordingError
from signaling.recording_store import RecordingStore, RecordingWriter, check_identity
from signaling.turn import IceServer

__all__ = [
    "BoundedTrack",
    "Recorders",
    "RecordingError",
    "RecordingPeer",
    "RecordingRefused",
    "RecordingSummary",
    "rtc_ice_server",
]

logger = logging.getLogger(__name__)

#: frames a BoundedTrack keeps while the encoder is behind: about one second of each
BUFFERED_FRAMES = {"video": 30, "audio": 50}
#: an answered connection that is not up by then is given up, so it cannot hold a slot forever
CONNECT_TIMEOUT = 30.0


class RecordingRefused(RecordingError):
    """The hub is at its recording capacity, or shutting down."""

    code = "recording_busy"


# --- media -----------------------------------------------------------------------------------


class BoundedTrack(MediaStreamTrack):
    """A remote track's frames with bounded buffering: a reader task drains the source (whose
    queue in aiortc is unbounded) into a deque of ``maxlen`` frames, dropping the oldest while
    the consumer (the encoder) is behind, so memory and latency stay bounded.

    Create it on the running loop; :meth:`stop` ends the reader, not the source.
    """

    def __init__(self, source: MediaStreamTrack, maxlen: int) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._frames: collections.deque[Frame | Packet] = collections.deque(maxlen=maxlen)
        self._arrived = asyncio.Event()
        self._source_ended = False
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self._reader = asyncio.get_running_loop().create_task(self._pull())

    @property
    def buffered(self) -> int:
        return len(self._frames)

    async def recv(self) -> Frame | Packet:
        while self.readyState == "live" and not self._frames and not self._source_ended:
            self._arrived.clear()
            await self._arrived.wait()
        if self.readyState != "live" or not self._frames:
            self.stop()
            raise MediaStreamError
        self.delivered += 1
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._reader.cancel()
        self._arrived.set()

    async def wait_stopped(self) -> None:
        """Until the reader task has finished (after :meth:`stop` or the source's end)."""
        await asyncio.wait([self._reader])

    async def _pull(self) -> None:
        try:
            with contextlib.suppress(MediaStreamError):  # raised when the source ends
                while True:
                    frame = await self._source.recv()
                    if len(self._frames) == self._frames.maxlen:
                        self.dropped += 1
                    self._frames.append(frame)
                    self.received += 1
                    self._arrived.set()
        except Exception:
            logger.exception("a recorded %s track failed", self.kind)
        finally:
            self._source_ended = True
            self._arrived.set()


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """What one segment holds; ``name`` is None when no media was ever accepted."""

    consult_id: str
    party: str
    name: str | None
    video_frames: int  # frames handed to the encoder
    audio_frames: int
    dropped_frames: int  # frames dropped because the encoder fell behind
    bytes_written: int  # encrypted bytes on disk


def rtc_ice_server(server: IceServer) -> RTCIceServer:
    return RTCIceServer(
        urls=list(server.urls), username=server.username, credential=server.credential
    )


class RecordingPeer:
    """The hub's receive-only end of one party's recording connection: one segment.

    Create it on the running loop. It closes itself when the connection fails or closes, or
    is not connected ``connect_timeout`` seconds after the answer; :meth:`close` may be called
    any number of times and always returns the same summary.
    """

    def __init__(
        self,
        consult_id: str,
        party: str,
        store: RecordingStore,
        ice_servers: Sequence[IceServer] = (),
        on_closed: Callable[[RecordingSummary], None] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        check_identity(consult_id, party)
        self.consult_id = consult_id
        self.party = party
        self._store = store
        self._on_closed = on_closed
        self._connect_timeout = connect_timeout
        self._watchdog: asyncio.TimerHandle | None = None
        # always explicit: with no ICE servers aiortc would fall back to Google's STUN
        config = RTCConfiguration(iceServers=[rtc_ice_server(s) for s in ice_servers])
        self._pc = RTCPeerConnection(config)
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._tracks: list[BoundedTrack] = []
        self._writer: RecordingWriter | None = None
        self._recorder: MediaRecorder | None = None
        self._closing: asyncio.Future[RecordingSummary] | None = None
        self._close_started = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closing is not None

    async def accept(self, offer_sdp: str) -> str:
        """Record the offer's audio and video; the complete answer SDP (aiortc does not trickle:
        every candidate is in it)."""
        if self._closing is not None or self._recorder is not None:
            raise RecordingError("this recording connection was already used", "recording_state")
        try:
            offer = RTCSessionDescription(sdp=offer_sdp, type="offer")
            await self._pc.setRemoteDescription(offer)
        except ValueError as exc:
            raise RecordingError("the recording offer is not valid", "recording_bad_offer") from exc
        if not self._tracks:
            raise RecordingError("the recording offer has no audio or video", "recording_no_media")
        if self._closing is not None:  # closed while the offer was applied: open no file
            raise RecordingError("the recording was stopped while starting", "recording_state")
        await self._start_recorder()
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._connect_timeout, self._on_connect_timeout)
        return self._pc.localDescription.sdp

    async def close(self) -> RecordingSummary:
        """Finish the segment (flush the encoders, seal the file) and drop the connection."""
        return await asyncio.shield(self._begin_close())

    async def wait_closed(self) -> RecordingSummary:
        """Until the segment is finished, by :meth:`close` or because the connection ended."""
        await self._close_started.wait()
        return await self.close()

    def summary(self) -> RecordingSummary:
        video = sum(t.delivered for t in self._tracks if t.kind == "video")
        audio = sum(t.delivered for t in self._tracks if t.kind == "audio")
        return RecordingSummary(
            consult_id=self.consult_id,
            party=self.party,
            name=self._writer.name if self._writer else None,
            video_frames=video,
            audio_frames=audio,
            dropped_frames=sum(t.dropped for t in self._tracks),
            bytes_written=self._writer.bytes_written if self._writer else 0,
        )

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind in BUFFERED_FRAMES:  # start draining at once, whatever happens next
            self._tracks.append(BoundedTrack(track, BUFFERED_FRAMES[track.kind]))

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state in ("failed", "closed") and self._closing is None:
            logger.info("recording connection %s; closing the segment", state)
            self._begin_close()

    def _on_connect_timeout(self) -> None:
        if self._pc.connectionState != "connected" and self._closing is None:
            logger.warning(
                "recording connection not up after %.0f s; closing it", self._connect_timeout
            )
            self._begin_close()

    def _begin_close(self) -> asyncio.Future[RecordingSummary]:
        # one closing task however many callers ask, and a caller's cancellation spares it
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
            self._close_started.set()
        return self._closing

    async def _start_recorder(self) -> None:
        # the file opens only now that the offer is known good, so a bad one leaves nothing
        self._writer = self._store.open_writer(self.consult_id, self.party)
        self._recorder = MediaRecorder(self._writer, format="webm")
        for track in self._tracks:
            self._recorder.addTrack(track)
        await self._recorder.start()

    async def _close(self) -> RecordingSummary:
        if self._watchdog is not None:
            self._watchdog.cancel()
        for track in self._tracks:
            track.stop()  # the recorder's tasks see the end and return
        try:
            if self._recorder is not None:
                await self._recorder.stop()  # flushes the encoders, writes the trailer
        except Exception:  # the connection and the file must be released regardless
            logger.exception("the recorder failed to finish a segment")
        finally:
            if self._writer is not None:
                self._writer.close()
            await self._pc.close()
            await asyncio.gather(*(t.wait_stopped() for t in self._tracks))
        summary = self.summary()
        logger.info(
            "recording segment closed: %d video, %d audio frames, %d dropped, %d bytes",
            summary.video_frames,
            summary.audio_frames,
            summary.dropped_frames,
            summary.bytes_written,
        )
        if self._on_closed is not None:
            self._on_closed(summary)
        return summary


class Recorders:
    """The app's live recording connections, at most ``max_active`` at once (each re-encodes
    on this process's event loop), and the summaries of segments finished since the last
    :meth:`stop` of their consult."""

    def __init__(
        self, store: RecordingStore, max_active: int = 2, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self._store = store
        self._max_active = max_active
        self._connect_timeout = connect_timeout
        self._peers: dict[tuple[str, str], RecordingPeer] = {}
        self._finished: dict[str, list[RecordingSummary]] = {}
        self._closed = False

    def active(self, consult_id: str) -> bool:
        return any(c == consult_id for c, _ in self._peers)

    async def start(
        self,
        consult_id: str,
        party: str,
        offer_sdp: str,
        ice_servers: Sequence[IceServer] = (),
    ) -> str:
        """Record one party from its offer, replacing (and finishing) its earlier connection;
        the answer SDP."""
        key = (consult_id, party)
        self._check_capacity(key)
        peer = RecordingPeer(
            consult_id,
            party,
            self._store,
            ice_servers,
            on_closed=lambda summary: self._retire(key, peer, summary),
            connect_timeout=self._connect_timeout,
        )
        earlier = self._peers.get(key)
        self._peers[key] = peer  # before any await, so concurrent starts count it
        if earlier is not None:
            await earlier.close()
        try:
            return await peer.accept(offer_sdp)
        except BaseException:
            await peer.close()
            raise

    async def stop(self, consult_id: str) -> list[RecordingSummary]:
        """Finish all of the consult's recording connections; every segment finished since the
        last stop (including replaced and failed connections)."""
        peers = [p for (c, _), p in self._peers.items() if c == consult_id]
        await asyncio.gather(*(p.close() for p in peers))
        return self._finished.pop(consult_id, [])

    async def close(self) -> list[RecordingSummary]:
        """On shutdown: finish every recording and refuse later starts; the segments not yet
        collected by :meth:`stop`."""
        self._closed = True
        await asyncio.gather(*(p.close() for p in list(self._peers.values())))
        summaries = [s for finished in self._finished.values() for s in finished]
        self._finished.clear()
        return summaries

    def _check_capacity(self, key: tuple[str, str]) -> None:
        if self._closed:
            raise RecordingRefused("the hub is shutting down")
        if sum(1 for k in self._peers if k != key) >= self._max_active:
            raise RecordingRefused("the hub is recording as many consults as it can")

    def _retire(self, key: tuple[str, str], peer: RecordingPeer, summary: RecordingSummary) -> None:
        if self._peers.get(key) is peer:
            del self._peers[key]
        if summary.name is not None:
            self._finished.setdefault(summary.consult_id, []).append(summary)
