"""A TCP relay in front of a hub, for tests that need a network to fail: it forwards every
connection byte for byte and can sever the latest WebSocket one abruptly (no close frame,
no FIN handshake the page could read as a clean close), as a dropped Wi-Fi would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

UPGRADE = b"GET /ws/"


class Relay:
    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.sockets: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)
        )
        self._ready.set()
        self.loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        first = await reader.read(65536)
        if first.startswith(UPGRADE):
            self.sockets.append((writer, up_writer))
        up_writer.write(first)
        await asyncio.gather(
            _pump(reader, up_writer), _pump(up_reader, writer), return_exceptions=True
        )

    def drop_latest_socket(self) -> None:
        """Cut the newest WebSocket connection on both sides at once (RST, not FIN)."""

        def cut() -> None:
            page_side, hub_side = self.sockets.pop()
            page_side.transport.abort()
            hub_side.transport.abort()

        self.loop.call_soon_threadsafe(cut)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()


@contextmanager
def relay(listen_port: int, target_port: int) -> Iterator[Relay]:
    proxy = Relay(listen_port, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
