"""A seated consult socket's frames by callback (server/consults/frames.py): aiohttp's own
parser feeds the queue; the inbox serves in order and stops reading a flooding peer."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import WSMessage, WSMsgType
from aiohttp._websocket.reader import WebSocketReader

from server.consults.frames import INBOX_MAX, FrameQueue, Inbox

MASK = b"\x11\x22\x33\x44"


def frame(opcode: int, payload: bytes) -> bytes:
    """One masked frame as a browser sends it (payloads under 126 bytes)."""
    masked = bytes(byte ^ MASK[index % 4] for index, byte in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + MASK + masked


class Reading:
    """The protocol's pause and resume, counted."""

    def __init__(self) -> None:
        self._reading_paused = False
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self._reading_paused = True
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self._reading_paused = False
        self.calls.append("resume")


async def test_a_listener_takes_the_data_frames_and_the_close_still_queues() -> None:
    queue = FrameQueue(Reading(), 2**16, loop=asyncio.get_running_loop())
    parser = WebSocketReader(queue, 2**16, compress=False, decode_text=True)
    parser.feed_data(frame(0x1, b"before"))  # no listener yet: queued as aiohttp does
    assert queue.buffered
    heard: list[WSMessage] = []
    queue.listen(heard.append)
    parser.feed_data(frame(0x1, b"one") + frame(0x9, b"ping") + frame(0x2, b"\x00"))
    parser.feed_data(frame(0x8, struct.pack("!H", 1000)))
    assert [(m.type, m.data) for m in heard] == [
        (WSMsgType.TEXT, "one"),
        (WSMsgType.PING, b"ping"),
        (WSMsgType.BINARY, b"\x00"),
    ]
    assert (await queue.read()).data == "before"
    closing = await queue.read()
    assert (closing.type, closing.data) == (WSMsgType.CLOSE, 1000)
    assert not queue.buffered


def gated(
    served: list[int], held: Callable[[int], bool] = lambda _: True
) -> tuple[Callable[[int], Awaitable[None]], asyncio.Event]:
    """A ``serve`` that records each item, those ``held`` once the gate opens."""
    gate = asyncio.Event()

    async def serve(item: int) -> None:
        if held(item):
            await gate.wait()
        served.append(item)

    return serve, gate


async def test_the_inbox_serves_in_order_and_only_while_something_waits() -> None:
    served: list[int] = []
    serve, gate = gated(served, lambda item: item == 0)
    inbox = Inbox(serve, Reading())
    for item in range(5):
        inbox.put(item)
    await asyncio.sleep(0)
    assert served == []  # the first is slow: the others wait behind it
    gate.set()
    await asyncio.sleep(0.01)
    assert served == [0, 1, 2, 3, 4]
    assert inbox._task is None  # nothing waiting: no task
    inbox.put(5)  # a new task for it
    await asyncio.sleep(0.01)
    assert served[-1] == 5
    assert inbox._task is None


async def test_a_flooding_peer_is_not_read_until_its_inbox_drains() -> None:
    serve, gate = gated([])
    reading = Reading()
    inbox = Inbox(serve, reading)
    for item in range(INBOX_MAX + 10):
        inbox.put(item)
    assert reading.calls == ["pause"]
    gate.set()
    await asyncio.sleep(0.01)
    assert reading.calls == ["pause", "resume"]


async def test_closing_the_inbox_drops_what_waits_and_lets_the_served_one_finish() -> None:
    served: list[int] = []
    serve, gate = gated(served)
    inbox = Inbox(serve, Reading())
    for item in range(3):
        inbox.put(item)
    await asyncio.sleep(0)
    closing = asyncio.create_task(inbox.close())
    await asyncio.sleep(0)
    assert not closing.done()
    gate.set()
    await closing
    assert served == [0]


async def test_a_failing_serve_is_logged_and_the_inbox_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    served: list[int] = []

    async def serve(item: int) -> None:
        if item == 0:
            raise RuntimeError("a bug")
        served.append(item)

    inbox = Inbox(serve, Reading())
    inbox.put(0)
    inbox.put(1)
    await asyncio.sleep(0.01)
    assert "inbox failed" in caplog.text
    inbox.put(2)
    await asyncio.sleep(0.01)
    assert served == [2]  # what waited behind the failure was dropped; the next is served
