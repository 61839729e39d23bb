"""A TCP relay between the hub and its database that fails on demand, at the moments that
make an acknowledgement unclear:

    with DatabaseRelay(5432) as relay:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{relay.port}/db"
        relay.drop_next_answer()  # the server's next answer is lost and its connection reset:
                                  # the statement ran (a commit happened) but the hub never hears
        relay.stall()             # nothing forwarded either way (held, not lost) until resume()
        relay.resume()

It runs its own event loop on a thread, so it keeps working while the test's loop waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any


class DatabaseRelay:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.answers_dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._drop_armed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> DatabaseRelay:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def drop_next_answer(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_drop_armed", True)

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _listen(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._flowing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            sides = (writer, up_writer)
            await asyncio.gather(
                self._pump(reader, up_writer, sides, answers=False),
                self._pump(up_reader, writer, sides, answers=True),
                return_exceptions=True,
            )
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        sides: tuple[asyncio.StreamWriter, ...],
        *,
        answers: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()
                if answers and self._drop_armed:
                    self._drop_armed = False
                    self.answers_dropped += 1
                    for side in sides:
                        side.transport.abort()
                    return
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()
