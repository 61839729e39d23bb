"""Fixtures of the functional tests: the hub's checker and outbox deliverer on the test's
settings, and the validation queue with real worker processes (the embedded SQLite broker
always, Redis when ``TELEPHARM_TEST_BROKER_URL`` is set)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from server.outbox.delivery import Deliverer
from server.settings import Settings
from server.worker.checking import Checker
from tests.support.processes import start_worker, stop

BROKER = os.environ.get("TELEPHARM_TEST_BROKER_URL", "")


@pytest.fixture
def checker(settings: Settings) -> Iterator[Checker]:
    """The checks a worker runs, in the test's process on the test's settings (a module that
    overrides ``settings`` gets a checker on its own)."""
    checker = Checker.from_settings(settings)
    yield checker
    checker.close()


@pytest.fixture
def deliverer(settings: Settings) -> Iterator[Deliverer]:
    """The outbox's deliverer in the test's process, on the test's settings."""
    deliverer = Deliverer.from_settings(settings)
    yield deliverer
    deliverer.close()


@pytest.fixture
def queue_settings(settings: Settings) -> Settings:
    """The test's settings on the test broker, sweeping often for what is stuck a second."""
    return dataclasses.replace(settings, broker_url=BROKER, sweep_interval=0.5, stuck_after=1.0)


@pytest.fixture
def worker(queue_settings: Settings) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts a `telepharm worker` on ``queue_settings`` at each call; all stop at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        started.append(start_worker(queue_settings))
        return started[-1]

    yield start
    stop(started)
