"""Supervised background loops: whatever a round raises, the loop goes on and says so."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.background import Loop, Supervisor


class Flaky:
    """A step that raises the given exceptions in turn, then works; counts its calls."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.worked = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.worked.set()


async def test_a_loop_survives_what_its_body_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "server.background")
    supervisor = Supervisor()
    step = Flaky(
        ConnectionResetError("Jane Doe's row"),  # what asyncpg raises when the network goes
        OSError("refused"),
        asyncio.CancelledError(),  # from inside its work, not a cancellation of the loop
        ValueError("a bug"),
    )
    states = []
    async with supervisor.every("sweep", 0.01, step):
        while not step.worked.is_set():
            states.append(supervisor.status()["sweep"])
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.03)
        assert supervisor.status() == {"sweep": "ok"}
    assert step.calls >= 6  # the four failures, the success and the rounds after it
    assert "failing" in states
    assert supervisor.status() == {"sweep": "stopped"}
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m.split(" (")[1].split(")")[0] for m in failures] == [
        "ConnectionResetError",
        "OSError",
        "CancelledError",
        "ValueError",
    ]
    assert not any("Jane" in r.getMessage() for r in caplog.records)  # type names only
    assert any("working again after 4 failures" in r.getMessage() for r in caplog.records)


async def test_retries_back_off_doubling_to_a_ceiling() -> None:
    async def never(loop: Loop) -> None:
        raise OSError

    loop = Loop("probe", never, first_retry=1.0, max_retry=30.0)
    delays = []
    for failures in range(1, 9):
        loop.failures = failures
        delays.append(loop.retry_delay())
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


async def test_a_step_that_hangs_is_abandoned_and_retried() -> None:
    calls = 0
    retried = asyncio.Event()

    async def hangs_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()
        retried.set()

    supervisor = Supervisor()
    async with supervisor.every("sweep", 0.01, hangs_once, timeout=0.05):
        async with asyncio.timeout(5):
            await retried.wait()
    assert calls == 2


async def test_a_loop_that_returns_is_run_again() -> None:
    runs = 0
    third = asyncio.Event()

    async def returns(loop: Loop) -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third.set()

    supervisor = Supervisor()
    async with Loop("worker", returns, first_retry=0.01) as loop:
        async with asyncio.timeout(5):
            await third.wait()
        assert loop.state == "failing"
    assert supervisor.status() == {}  # a loop made outside a supervisor is nobody's business


async def test_states_of_a_long_running_loop() -> None:
    started = asyncio.Event()

    async def run(loop: Loop) -> None:
        if loop.failures < 2:
            raise OSError
        loop.ok()
        started.set()
        await asyncio.Event().wait()

    loop = Loop("worker", run, first_retry=0.01, failing="restarting")
    assert loop.state == "stopped"  # not started yet
    seen = set()
    async with loop:
        while not started.is_set():
            seen.add(loop.state)
            await asyncio.sleep(0)
        assert loop.state == "ok"
    assert "restarting" in seen
    assert loop.state == "stopped"


async def test_the_supervisor_reports_every_loop_it_made() -> None:
    supervisor = Supervisor()

    async def forever(loop: Loop) -> None:
        await asyncio.Event().wait()

    worker = supervisor.keep("worker", forever, failing="restarting")
    async with supervisor.every("sweep", 10, Flaky()):
        assert supervisor.status() == {"worker": "stopped", "sweep": "ok"}
        async with worker:
            assert supervisor.status() == {"worker": "ok", "sweep": "ok"}
