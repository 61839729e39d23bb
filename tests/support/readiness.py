"""Waiting on ``/readyz`` for one of its checks (a background loop, the embedded worker) to
show a state, whether the hub is the app in the test or a process beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

#: ``/readyz`` as seen once: its status code and its body
Readiness = tuple[int, dict[str, Any]]


async def until_check(
    readiness: Callable[[], Awaitable[Readiness]], name: str, state: str, seconds: float = 15
) -> Readiness:
    """Ask ``readiness`` until check ``name`` shows ``state``; what it answered then."""
    async with asyncio.timeout(seconds):
        while True:
            status, body = await readiness()
            if body["checks"].get(name) == state:
                return status, body
            await asyncio.sleep(0.1)
