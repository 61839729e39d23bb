"""The signaling bus: in-process always, Redis pub/sub when TELEPHARM_TEST_REDIS_URL is set."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from signaling.bus import Bus, LocalBus, RedisBus, create_bus

REDIS_URL = os.environ.get("TELEPHARM_TEST_REDIS_URL", "")
KINDS = ["local"] + (["redis"] if REDIS_URL else [])


@pytest.fixture(params=KINDS)
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two hub processes' buses: the same bus in-process, two Redis clients otherwise."""
    if request.param == "local":
        bus = LocalBus()
        yield bus, bus
        await bus.close()
        return
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    first, second = RedisBus(REDIS_URL, prefix), RedisBus(REDIS_URL, prefix)
    yield first, second
    await first.close()
    await second.close()


async def _until(received: list[str], count: int) -> None:
    # the subscribers are plain list.append callbacks, as a socket's outbox is: poll them
    async with asyncio.timeout(5):
        while len(received) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_messages_arrive_in_order_on_their_channel_only(buses: tuple[Bus, Bus]) -> None:
    here, there = buses
    mine: list[str] = []
    others: list[str] = []
    await there.subscribe("consult:a:patient", mine.append)
    await there.subscribe("consult:b:patient", others.append)
    for n in range(50):
        await here.publish("consult:a:patient", str(n))
    await _until(mine, 50)
    assert mine == [str(n) for n in range(50)]
    assert others == []


async def test_every_subscriber_gets_it_until_it_cancels(buses: tuple[Bus, Bus]) -> None:
    here, there = buses
    first: list[str] = []
    second: list[str] = []
    subscription = await there.subscribe("c", first.append)
    await there.subscribe("c", second.append)
    await here.publish("c", "one")
    await _until(second, 1)
    await subscription.cancel()
    await subscription.cancel()  # twice is harmless
    await here.publish("c", "two")
    await _until(second, 2)
    assert (first, second) == (["one"], ["one", "two"])


async def test_a_failing_subscriber_does_not_starve_the_others(buses: tuple[Bus, Bus]) -> None:
    here, there = buses
    received: list[str] = []

    def broken(_: str) -> None:
        raise RuntimeError("a bug in one socket's handler")

    await there.subscribe("c", broken)
    await there.subscribe("c", received.append)
    await here.publish("c", "x")
    await _until(received, 1)


async def test_local_delivery_never_runs_inside_publish() -> None:
    bus = LocalBus()
    received: list[str] = []
    await bus.subscribe("c", received.append)
    await bus.publish("c", "x")
    assert received == []  # delivered from the loop, as over Redis
    await _until(received, 1)


def test_the_bus_follows_the_setting() -> None:
    assert isinstance(create_bus(""), LocalBus)
