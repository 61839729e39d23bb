"""A seated consult socket's frames, handed to a callback as the parser reads them.

Why not ``async for frame in ws``: each ``receive()`` leaves a chain waiting for the socket's
next frame (aiohttp's ``__anext__``, ``receive`` and ``read`` coroutines, a future and its
iterator, the last message), about nine objects alive for the seconds between two messages.
With thousands of sockets talking, every young collection of the garbage collector finds
thousands of them alive, promotes them, and the full collections they then feed held the
loop for up to a second at 5,000 consults (tests/benchmarks/README.md). Delivered by callback,
a frame leaves nothing waiting: the socket's handler waits once, for the close, and the
messages are served by a task that exists only while some are pending.

This leans on two of aiohttp's internals (the queue its WebSocket parser feeds, and where the
response builds it); tests/functional/test_consult_signaling.py drives every path through the
real server, so an aiohttp that changes them fails there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMessage, WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

log = logging.getLogger(__name__)

#: the frames a listener gets; close, errors and the end still go to ``receive()``
DELIVERED = frozenset({WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG})
#: frames waiting for the inbox's task before the socket stops being read
INBOX_MAX = 64

Listener = Callable[[WSMessage], None]


class FrameQueue(WebSocketDataQueue):
    """aiohttp's queue between the parser and ``receive()``, with a listener that takes the
    data frames as they are parsed (the control frames and the end still queue)."""

    __slots__ = ("_listener",)

    def __init__(self, protocol: Any, limit: int, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(protocol, limit, loop=loop)
        self._listener: Listener | None = None

    def listen(self, listener: Listener | None) -> None:
        self._listener = listener

    @property
    def buffered(self) -> bool:
        """Frames queued for ``receive()`` (those that came before the listener)."""
        return bool(self._buffer)

    def feed_data(self, data: Any, size: int) -> None:
        listener = self._listener
        if listener is not None and data.type in DELIVERED:
            listener(data)
        else:
            super().feed_data(data, size)


class SignalingSocket(web.WebSocketResponse):
    """aiohttp's WebSocket response whose parser feeds a :class:`FrameQueue`."""

    frames: FrameQueue

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        # aiohttp's own, with our queue (no heartbeat: the hub's Heartbeat pings)
        assert self._loop is not None
        self._ws_protocol = protocol
        self._writer = writer
        self._reader = self.frames = FrameQueue(
            request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop
        )
        self._parser = WebSocketReader(
            self.frames, self._max_msg_size, compress=False, decode_text=True
        )
        request.protocol.set_parser(self._parser)
        request.protocol.keep_alive(False)


class Inbox:
    """A seated socket's messages in the order they came, served by a task that exists only
    while some wait. ``serve`` is called for each; reading pauses while :data:`INBOX_MAX`
    wait (a peer flooding faster than it is served), and :meth:`close` lets the one being
    served finish and drops the rest."""

    __slots__ = ("_paused", "_pending", "_protocol", "_serve", "_task")

    def __init__(self, serve: Callable[[Any], Any], protocol: Any) -> None:
        self._serve = serve
        self._protocol = protocol
        #: made for a burst of messages and let go after it (most sockets are quiet)
        self._pending: deque[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._paused = False

    def put(self, item: Any) -> None:
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        pending.append(item)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(pending))
        elif len(pending) >= INBOX_MAX and not self._paused:
            self._paused = True
            self._protocol.pause_reading()

    async def _drain(self, pending: deque[Any]) -> None:
        try:
            while pending:
                await self._serve(pending.popleft())
                if self._paused and len(pending) < INBOX_MAX // 2:
                    self._paused = False
                    with contextlib.suppress(Exception):  # a transport already gone
                        self._protocol.resume_reading()
        except Exception:  # serve answers its own failures: this is a bug, not the peer's
            log.exception("a consult socket's inbox failed")
        finally:
            self._task = self._pending = None

    async def close(self) -> None:
        """Drop what waits; wait for what is being served."""
        if self._pending is not None:
            self._pending.clear()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await task
