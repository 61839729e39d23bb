"""The floor of a WebSocket in aiohttp: a bare handler that holds the socket open (heartbeat
on, no compression, as the hub's) and echoes; the consult benchmark's memory yardstick."""

from __future__ import annotations

import sys

from aiohttp import web

from tests.benchmarks.baseline_server import serve


async def handle(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, compress=False)
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws


def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", handle)
    serve(app, int(sys.argv[1]))


if __name__ == "__main__":
    main()
