"""A TCP proxy that fails on demand, for tests of what the hub does when the network between it
and a server (PostgreSQL, Redis, another hub) goes wrong.

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/db"
        proxy.cut()      # every connection reset (RST), new ones refused
        proxy.restore()  # connections accepted and forwarded again
        proxy.stall()    # connections accepted, nothing forwarded (a black hole) until restore

It runs its own event loop on a thread, so it keeps working while the test's loop waits in a
blocking call, and for processes the test starts. Each method returns once it has taken
effect: after ``cut()``, no byte more goes through and nothing listens on ``port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

#: SO_LINGER on with a zero timeout: close() sends RST instead of FIN
_RESET = struct.pack("ii", 1, 0)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the test's side ---------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        self._loop.call_soon_threadsafe(self._flowing.set)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self) -> None:
        """Reset every open connection on both sides and refuse new ones."""
        self._call(self._cut())

    def stall(self) -> None:
        """Keep accepting, forward nothing: what each side sends waits here until restore."""
        self._call(self._set_flowing(False))

    def restore(self) -> None:
        """Listen again after a cut, forward again after a stall (what waited goes through)."""
        self._call(self._restore())

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        return len(self._links)

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    # -- the proxy's loop --------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _restore(self) -> None:
        if self._server is None:
            await self._listen()
        self._flowing.set()

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for client, upstream in list(self._links):
            _reset(client)
            if upstream is not None:
                _reset(upstream)
        self._links.clear()
        # the pumps end with their sockets, even those held back by a stall
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(writer, reader)
        except asyncio.CancelledError:
            # cut: asyncio's server reports a handler that ends cancelled as an error
            pass
        finally:
            self._tasks.discard(task)

    async def _relay(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        self._links.add(link)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        finally:
            self._links.discard(link)
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
            )
        finally:
            self._links.discard(link)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    writer.transport.abort()
