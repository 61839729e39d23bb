"""The signaling bus: how a consult's two sides reach each other when their sockets may sit on
different hub processes.

A channel carries text envelopes to every subscriber of it, in the order they were published.
:class:`LocalBus` is the in-process default; :class:`RedisBus` uses Redis pub/sub so any
number of hub processes share the channels (``TELEPHARM_REDIS_URL``). Delivery is a plain
callback, not a task or a queue per subscriber: an idle consult costs no task, and the
subscriber decides what to do with a message (here: put it on its socket's outbox).
Subscribing returns only once the subscription is live, so a message published after that
is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Deliver = Callable[[str], None]
SUBSCRIBE_TIMEOUT = 5.0


class _Unsubscribe(Protocol):
    async def unsubscribe(self, channel: str, deliver: Deliver) -> None: ...


class Subscription:
    """One subscriber's place on a channel; :meth:`cancel` takes it off (twice is harmless).
    Three references, not a closure: every open socket keeps one."""

    __slots__ = ("_bus", "_channel", "_deliver")

    def __init__(self, bus: _Unsubscribe, channel: str, deliver: Deliver) -> None:
        self._bus: _Unsubscribe | None = bus
        self._channel = channel
        self._deliver = deliver

    async def cancel(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            await bus.unsubscribe(self._channel, self._deliver)


class Bus(Protocol):
    async def publish(self, channel: str, data: str) -> None: ...

    async def subscribe(self, channel: str, deliver: Deliver) -> Subscription: ...

    async def close(self) -> None: ...


class _Fanout:
    """Channel -> callbacks of this process, delivered on the event loop in publish order."""

    def __init__(self) -> None:
        self.channels: dict[str, list[Deliver]] = {}

    def add(self, channel: str, deliver: Deliver) -> bool:
        """Add a callback; True if it is the channel's first in this process."""
        callbacks = self.channels.setdefault(channel, [])
        callbacks.append(deliver)
        return len(callbacks) == 1

    def remove(self, channel: str, deliver: Deliver) -> bool:
        """Remove a callback; True if the channel has none left in this process."""
        callbacks = self.channels.get(channel, [])
        with contextlib.suppress(ValueError):
            callbacks.remove(deliver)
        if callbacks:
            return False
        self.channels.pop(channel, None)
        return True

    def dispatch(self, channel: str, data: str) -> None:
        for deliver in tuple(self.channels.get(channel, ())):
            try:
                deliver(data)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("a bus subscriber failed on channel %s", channel)


class LocalBus:
    """Channels within one process (the embedded default)."""

    def __init__(self) -> None:
        self._fanout = _Fanout()

    async def publish(self, channel: str, data: str) -> None:
        # delivered from the loop, never inside the publisher's own call (as over Redis)
        asyncio.get_running_loop().call_soon(self._fanout.dispatch, channel, data)

    async def subscribe(self, channel: str, deliver: Deliver) -> Subscription:
        self._fanout.add(channel, deliver)
        return Subscription(self, channel, deliver)

    async def unsubscribe(self, channel: str, deliver: Deliver) -> None:
        self._fanout.remove(channel, deliver)

    async def close(self) -> None:
        self._fanout.channels.clear()


class RedisBus:
    """Channels shared by every hub process on one Redis: one pub/sub connection per process,
    one Redis subscription per channel that has subscribers here."""

    def __init__(self, url: str, prefix: str = "telepharm:") -> None:
        import redis.asyncio as redis  # only hubs with a Redis URL need the client

        self._redis: Any = redis.from_url(url)
        self._pubsub: Any = self._redis.pubsub()
        self._prefix = prefix
        self._fanout = _Fanout()
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, data: str) -> None:
        await self._redis.publish(self._prefix + channel, data)

    async def subscribe(self, channel: str, deliver: Deliver) -> Subscription:
        async with self._lock:
            if self._fanout.add(channel, deliver):
                await self._subscribe(channel)
        return Subscription(self, channel, deliver)

    async def unsubscribe(self, channel: str, deliver: Deliver) -> None:
        async with self._lock:
            if self._fanout.remove(channel, deliver):
                await self._pubsub.unsubscribe(self._prefix + channel)

    async def _subscribe(self, channel: str) -> None:
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmed[self._prefix + channel] = confirmed
        try:
            await self._pubsub.subscribe(self._prefix + channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read())
            await asyncio.wait_for(confirmed, SUBSCRIBE_TIMEOUT)
        except BaseException:
            self._confirmed.pop(self._prefix + channel, None)
            self._fanout.channels.pop(channel, None)
            raise

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the signaling bus lost Redis; retrying")
                await asyncio.sleep(1.0)
                continue
            if message is not None:
                self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        channel = _text(message["channel"])
        if message["type"] == "subscribe":
            confirmed = self._confirmed.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif message["type"] == "message":
            self._fanout.dispatch(channel.removeprefix(self._prefix), _text(message["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def create_bus(redis_url: str) -> Bus:
    """Redis pub/sub when a URL is configured, else channels within this process."""
    return RedisBus(redis_url) if redis_url else LocalBus()
