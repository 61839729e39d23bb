"""Live-consult pieces that need no database: a socket's outbox, announcements out of order,
takeovers by generation, the rate limit."""

from __future__ import annotations

import asyncio
import json

from signaling import protocol as p
from signaling.bus import LocalBus
from signaling.consults import ConsultState
from signaling.rooms import (
    CLOSE_REPLACED,
    CLOSE_SLOW,
    OUTBOX_MAX,
    Participant,
    RateLimit,
    Rooms,
    Who,
)


class StuckSocket:
    """A socket whose peer stopped reading: every send waits forever."""

    def __init__(self) -> None:
        self.closed_with: int | None = None
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


def _participant(socket: StuckSocket) -> tuple[Rooms, Participant]:
    rooms = Rooms(store=None, bus=LocalBus(), ice_for=lambda c, r: ())  # type: ignore[arg-type]
    return rooms, Participant(rooms, "c-1", "patient", socket, Who("patient"))


async def test_a_socket_that_stops_reading_is_closed_not_buffered_for() -> None:
    socket = StuckSocket()
    rooms, participant = _participant(socket)
    for _ in range(OUTBOX_MAX + 5):
        participant.send(p.Pong())
    await asyncio.sleep(0.05)
    assert socket.closed_with == CLOSE_SLOW
    assert participant.closed
    await rooms.close()


async def test_late_announcements_change_nothing() -> None:
    socket = StuckSocket()
    rooms, participant = _participant(socket)
    participant.update(5, ConsultState.IN_CALL, True)
    participant.update(4, ConsultState.ADMITTED, False)  # older, from another process
    assert (participant.state, participant.recording) == (ConsultState.IN_CALL, True)
    participant.update(6, ConsultState.ADMITTED, False)
    assert (participant.state, participant.recording) == (ConsultState.ADMITTED, False)
    await rooms.close()


async def test_only_a_newer_seat_takes_over() -> None:
    socket = StuckSocket()
    rooms, participant = _participant(socket)
    participant.generation = 3
    participant.deliver(json.dumps({"k": "kick", "generation": 3}))  # its own notice
    participant.deliver(json.dumps({"k": "kick", "generation": 2}))  # an older socket's, late
    await asyncio.sleep(0)
    assert socket.closed_with is None
    participant.deliver(json.dumps({"k": "kick", "generation": 4}))
    await asyncio.sleep(0.01)
    assert socket.closed_with == CLOSE_REPLACED
    assert participant.gone == "replaced"
    await rooms.close()


def test_the_rate_limit_allows_bursts_then_the_rate() -> None:
    limit = RateLimit(rate=10, burst=5)
    assert [limit.allow() for _ in range(7)] == [True] * 5 + [False] * 2
