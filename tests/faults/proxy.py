"""A TCP proxy that fails on command, between the hub's processes and a server they depend on
(PostgreSQL, Redis), for fault-injection tests.

- ``cut()``: every open connection is reset (RST on both sides) and the port stops listening,
  so new connections are refused, as when the server's host drops off the network;
- ``stall()``: connections stay open and new ones are accepted, but no byte moves either way,
  as in a partition that drops packets silently; nothing is lost, it flows again on restore;
- ``restore()``: back to forwarding; ``flap(times, period)``: repeated short cuts.

The proxy runs its own event loop on a thread, so tests may call it from anywhere.
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
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._links: set[_Link] = set()

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
        self._call(self._cut())

    def stall(self) -> None:
        self._call(self._stall())

    def restore(self) -> None:
        self._call(self._restore())

    def flap(self, times: int, period: float) -> None:
        """``times`` cuts, each lasting half of ``period``, with forwarding in between."""
        for _ in range(times):
            self.cut()
            time.sleep(period / 2)
            self.restore()
            time.sleep(period / 2)

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _cut(self) -> None:
        await self._stop_listening()
        for link in list(self._links):
            link.abort()
        self._flowing.set()  # stalled pumps wake up to find their link gone

    async def _stall(self) -> None:
        self._flowing.clear()

    async def _restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _shutdown(self) -> None:
        await self._cut()
        # the reset connections end their pumps by themselves; cancel only what hangs on
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            _, hanging = await asyncio.wait(tasks, timeout=5)
            for task in hanging:
                task.cancel()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
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
                self._pump(reader, up_writer, link), self._pump(up_reader, writer, link)
            )
            if not link.aborted:
                link.close()
        except OSError:
            link.abort()
        finally:
            self._links.discard(link)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while data := await source.read(CHUNK):
                await self._flowing.wait()
                if link.aborted:
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


class _Link:
    """One proxied connection: the client's side and, once connected, the server's."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.aborted = False

    def abort(self) -> None:
        """Reset both sides at once: RST, not FIN, so neither reads it as a clean close."""
        self.aborted = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)

    def close(self) -> None:
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
