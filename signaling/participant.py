"""One open socket in one live consult: its outbox, what it last heard of the consult, and
the envelopes of its channel (:mod:`signaling.envelopes`) turned into protocol messages.

Participants are many (one per socket, thousands per process), so a participant is slots
and bound methods: no closure, task or queue per socket while it is idle.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any, Protocol

from . import envelopes
from . import protocol as p
from .bus import Bus, Subscription
from .consults import ConsultState
from .policy import OVER
from .ports import Connection, Who

log = logging.getLogger(__name__)

#: a socket whose outbox grows past this is not reading: it is closed, not buffered for
OUTBOX_MAX = 256
#: getStats summaries kept at most this often per participant
STATS_INTERVAL = 1.0
#: WebSocket close codes (4000-4999 are the application's)
CLOSE_ENDED, CLOSE_REPLACED, CLOSE_SLOW, CLOSE_UNAUTHORIZED = 4000, 4001, 4002, 4003


class RateLimit:
    """A token bucket: ``rate`` messages a second on average, bursts of ``burst``."""

    __slots__ = ("_allowance", "_burst", "_rate", "_stamp")

    def __init__(self, rate: float = 20.0, burst: float = 60.0) -> None:
        self._rate, self._burst = rate, burst
        self._allowance, self._stamp = burst, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._allowance = min(self._burst, self._allowance + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._allowance < 1:
            return False
        self._allowance -= 1
        return True


class Host(Protocol):
    """What a participant needs of the rooms that hold it (:class:`signaling.rooms.Rooms`,
    which imports this module): background work kept until it ends, and a greeting to the
    other side."""

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    async def hello(self, participant: Participant, *, reply: bool) -> None: ...


class Participant:
    """One open socket in one consult."""

    __slots__ = (
        "_flusher",
        "_last_stats",
        "_outbox",
        "_subscription",
        "closed",
        "conn_id",
        "connection",
        "consult_id",
        "generation",
        "gone",
        "recording",
        "revision",
        "role",
        "rooms",
        "state",
        "who",
    )

    def __init__(
        self, rooms: Host, consult_id: str, role: str, connection: Connection, who: Who
    ) -> None:
        self.rooms = rooms
        self.consult_id = consult_id
        self.role = role
        self.conn_id = secrets.token_hex(8)
        self.connection = connection
        self.who = who
        self.state = ConsultState.SCHEDULED
        self.recording = False
        self.revision = -1
        self.generation = 0
        self.closed = False
        #: why the socket went: None (dropped), "left", "replaced", "over", "restart" or
        #: "unauthorized" (its pharmacist's sign-in ended)
        self.gone: str | None = None
        self._outbox: deque[str] | None = None  # made when first needed: most sockets idle
        self._flusher: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._last_stats = 0.0

    # -- to the socket -----------------------------------------------------------------------

    def send(self, message: p.Message) -> None:
        self.send_text(p.encode(message))

    def send_text(self, text: str) -> None:
        if self.closed:
            return
        if self._outbox is None:
            self._outbox = deque()
        elif len(self._outbox) >= OUTBOX_MAX:
            log.warning("consult %s: a %s socket stopped reading", self.consult_id, self.role)
            self.rooms.spawn(self.connection.close(CLOSE_SLOW, "not reading"))
            self.closed = True
            return
        self._outbox.append(text)
        if self._flusher is None:
            self._flusher = self.rooms.spawn(self._flush())

    async def _flush(self) -> None:
        outbox = self._outbox
        assert outbox is not None
        try:
            while outbox and not self.closed:
                await self.connection.send(outbox.popleft())
        except (ConnectionError, RuntimeError):
            self.closed = True  # the socket's own handler notices and cleans up
        finally:
            self._flusher = None
            if outbox and not self.closed:  # appended while the last send finished
                self._flusher = self.rooms.spawn(self._flush())
            elif not outbox:
                self._outbox = None

    async def drain(self) -> None:
        """Wait until what is queued has been written (before closing the socket)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def close(self, code: int, reason: str, gone: str) -> None:
        if self.gone is None:
            self.gone = gone
        await self.drain()
        await self.connection.close(code, reason)

    # -- from the bus ------------------------------------------------------------------------

    def deliver(self, data: str) -> None:
        match envelopes.decode(data):
            case envelopes.Relay(message=text):
                self.send_text(text)
            case envelopes.Hello(role=role, reply=reply):
                self.send(p.PeerJoined(role=role))
                if not reply:
                    self.rooms.spawn(self.rooms.hello(self, reply=True))
            case envelopes.Bye(role=role):
                self.send(p.PeerLeft(role=role))
            case envelopes.State(revision=revision, state=state, recording=recording):
                self.update(revision, state, recording)
            case envelopes.Kick(generation=generation) if generation > self.generation:
                self.gone = "replaced"
                message = "joined on another connection"
                self.rooms.spawn(self.connection.close(CLOSE_REPLACED, message))

    def update(self, revision: int, state: ConsultState, recording: bool) -> None:
        """The consult as of ``revision``; an older announcement (arriving late from another
        process) changes nothing."""
        if revision <= self.revision:
            return
        self.revision, self.state = revision, state
        if recording != self.recording:
            self.recording = recording
            self.send(p.Recording(active=recording))
        if state in OVER:
            self.send(p.Ended())
            self.rooms.spawn(self.close(CLOSE_ENDED, "the consult is over", "over"))

    async def subscribe(self, bus: Bus) -> None:
        self._subscription = await bus.subscribe(
            envelopes.channel(self.consult_id, self.role), self.deliver
        )

    async def unsubscribe(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()

    def stats_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_stats < STATS_INTERVAL:
            return False
        self._last_stats = now
        return True
