"""Live-consult pieces that need no database: a socket's outbox, announcements out of order,
takeovers by generation, the rate limit, the sign-ins re-checked in one batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection

from signaling import protocol as p
from signaling.bus import LocalBus
from signaling.consults import ConsultState
from signaling.participant import (
    CLOSE_REPLACED,
    CLOSE_SLOW,
    CLOSE_UNAUTHORIZED,
    OUTBOX_MAX,
    Participant,
    RateLimit,
)
from signaling.ports import Who
from signaling.rooms import Rooms


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


class OpenSocket:
    """A socket that takes what it is sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed_with: int | None = None

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


class SignIns:
    """The store's answer on sign-ins: only those in ``live`` stand; each call is kept."""

    def __init__(self, live: set[tuple[str, str]]) -> None:
        self.live = live
        self.asked: list[set[tuple[str, str]]] = []

    async def dropped_seats(self, before: object) -> list[tuple[str, str, str]]:
        return []

    async def authorised(self, held: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        self.asked.append(set(held))
        return self.live & set(held)


async def test_the_sign_ins_of_all_pharmacist_sockets_are_checked_in_one_batch() -> None:
    store = SignIns(live={("c-1", "fam-1")})
    rooms = Rooms(store=store, bus=LocalBus(), ice_for=lambda c, r: (), recheck=0.05)  # type: ignore[arg-type]
    sockets = {name: OpenSocket() for name in ("kept", "ended", "other", "patient")}
    for name, consult, who in (
        ("kept", "c-1", Who("pharmacist", "u-1", sign_in="fam-1")),
        ("ended", "c-2", Who("pharmacist", "u-1", sign_in="fam-2")),
        ("other", "c-3", Who("pharmacist", "u-2", sign_in="fam-3")),
        ("patient", "c-1", Who("patient")),
    ):
        rooms.participants.add(Participant(rooms, consult, who.role, sockets[name], who))
    async with asyncio.timeout(5):
        while sockets["ended"].closed_with is None or sockets["other"].closed_with is None:
            await rooms.housekeeping()  # as the hub's supervised loop runs it
            await asyncio.sleep(rooms.housekeeping_period)
    assert store.asked[0] == {("c-1", "fam-1"), ("c-2", "fam-2"), ("c-3", "fam-3")}
    assert {name: s.closed_with for name, s in sockets.items()} == {
        "kept": None,
        "ended": CLOSE_UNAUTHORIZED,
        "other": CLOSE_UNAUTHORIZED,
        "patient": None,
    }
    assert [json.loads(m)["code"] for m in sockets["ended"].sent] == ["unauthorized"]
    await rooms.close()


class Counted:
    """An observer that remembers what the rooms reported."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bool]] = []
        self.seats: list[tuple[str, int]] = []

    def signaling_message(self, kind: str, accepted: bool) -> None:
        self.messages.append((kind, accepted))

    def seated(self, role: str, change: int) -> None:
        self.seats.append((role, change))


async def test_the_rooms_report_messages_done_and_refused_to_their_observer() -> None:
    counted = Counted()
    rooms = Rooms(store=None, bus=LocalBus(), ice_for=lambda c, r: (), observer=counted)  # type: ignore[arg-type]
    participant = Participant(rooms, "c-1", "patient", OpenSocket(), Who("patient"))
    participant.update(1, ConsultState.WAITING, False)
    assert await rooms.handle(participant, p.Ping())
    # a patient may not admit anyone: refused, and reported so
    assert not await rooms.handle(participant, p.Admit())
    assert counted.messages == [("ping", True), ("admit", False)]
    await rooms.close()
