"""A TCP proxy that fails on demand, between the hub (the app in the test, or its processes)
and what it talks to (PostgreSQL, Redis), or between browsers and a hub:

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/db"
        proxy.cut()      # every open connection reset (RST on both sides), new ones refused,
                         # as when the server's host drops off the network
        proxy.restore()  # listening and forwarding again (after a cut or a stall)
        proxy.stall()    # connections accepted, no byte moved either way, as in a partition
        proxy.resume()   # that drops packets silently: nothing is lost, it flows on resume
        proxy.flap(times=10, period=0.6)  # repeated short cuts
        proxy.drop_next_answer()  # the server's next answer is lost and its connection reset:
                                  # the statement ran (a commit happened), the client never hears
        proxy.cut_latest(b"GET /ws/")  # reset the newest connection that opened so (a socket)

A reset on one side is passed on to the other at once, as the network would: a client killed
with its connection reset must not leave the server holding its session (and its locks).

The proxy runs its own event loop on a thread, so it keeps working while the test's loop waits
in a blocking call, and for processes the test starts. Each method returns once it has taken
effect: after ``cut()``, no byte more goes through and nothing listens on ``port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

CHUNK = 65536


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        #: server answers lost by :meth:`drop_next_answer` so far
        self.answers_dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._drop_armed = False
        #: open connections, oldest first (a dict as an ordered set)
        self._links: dict[_Link, None] = {}

    # -- the test's side ---------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._call(self._restore())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self) -> None:
        """Reset every open connection on both sides and refuse new ones."""
        self._call(self._cut())

    def stall(self) -> None:
        """Keep accepting, forward nothing: what each side sends waits here until resumed."""
        self._call(self._stall())

    def resume(self) -> None:
        """End a stall: what waited goes through."""
        self._call(self._resume())

    def restore(self) -> None:
        """Listen again after a cut, forward again after a stall."""
        self._call(self._restore())

    def flap(self, times: int, period: float) -> None:
        """``times`` cuts, each lasting half of ``period``, with forwarding in between."""
        for _ in range(times):
            self.cut()
            time.sleep(period / 2)
            self.restore()
            time.sleep(period / 2)

    def drop_next_answer(self) -> None:
        """Lose the next bytes the server sends and reset that connection on both sides."""
        self._call(self._arm_drop())

    def cut_latest(self, opening: bytes) -> None:
        """Reset, on both sides, the newest open connection whose client's first bytes start
        with ``opening`` (``b"GET /ws/"``: the newest WebSocket), as a dropped Wi-Fi would."""
        self._call(self._cut_latest(opening))

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        return len(self._links)

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    # -- the proxy's loop --------------------------------------------------------------------

    async def _cut(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
        for link in list(self._links):
            link.abort()
        self._links.clear()
        self._flowing.set()  # stalled pumps wake up to find their link gone

    async def _stall(self) -> None:
        self._flowing.clear()

    async def _resume(self) -> None:
        self._flowing.set()

    async def _restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _arm_drop(self) -> None:
        self._drop_armed = True

    async def _cut_latest(self, opening: bytes) -> None:
        for link in reversed(list(self._links)):
            if link.opening.startswith(opening):
                link.abort()
                del self._links[link]
                return
        raise AssertionError(f"no open connection began with {opening!r}")

    async def _shutdown(self) -> None:
        await self._cut()
        # the reset connections end their pumps by themselves; cancel only what hangs on
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            _, hanging = await asyncio.wait(tasks, timeout=5)
            for task in hanging:
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links[link] = None
        try:
            await self._flowing.wait()  # a stalled proxy accepts but does not connect yet
            if link.aborted:
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            link.upstream = up_writer
            if link.aborted:  # cut while connecting
                link.abort()
                return
            await asyncio.gather(
                self._pump(reader, up_writer, link, answers=False),
                self._pump(up_reader, writer, link, answers=True),
            )
            if not link.aborted:
                link.close()
        except OSError:
            link.abort()
        finally:
            self._links.pop(link, None)
            if not (link.aborted or link.closed):
                # cancelled (the proxy shutting down) before it ended: never leave a socket
                # for the garbage collector to find open
                link.abort()

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        link: _Link,
        *,
        answers: bool,
    ) -> None:
        try:
            while data := await source.read(CHUNK):
                if not answers and not link.opening:
                    link.opening = data
                await self._flowing.wait()
                if link.aborted or (answers and self._drop_answer()):
                    link.abort()
                    return
                sink.write(data)
                await sink.drain()
        except OSError:
            # a reset on one side is passed on to the other at once, as the network would
            # (waiting for the other side to speak could wait forever: an idle database)
            link.abort()
            return
        if not link.aborted and sink.can_write_eof():
            sink.write_eof()  # a clean close on one side is passed on as such

    def _drop_answer(self) -> bool:
        if not self._drop_armed:
            return False
        self._drop_armed = False
        self.answers_dropped += 1
        return True


class _Link:
    """One proxied connection: the client's side and, once connected, the server's."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        #: the first bytes the client sent (what kind of connection it is)
        self.opening = b""
        self.aborted = False
        self.closed = False

    def abort(self) -> None:
        """Reset both sides at once: RST, not FIN, so neither reads it as a clean close."""
        self.aborted = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)

    def close(self) -> None:
        self.closed = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and not writer.transport.is_closing():
        # a zero linger time turns the close into a reset; a socket already closed has none
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
