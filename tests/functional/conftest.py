"""The validation queue with real worker processes: the embedded SQLite broker always, Redis
when ``TELEPHARM_TEST_BROKER_URL`` is set."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from server.settings import Settings
from tests.support.processes import start_worker, stop

BROKER = os.environ.get("TELEPHARM_TEST_BROKER_URL", "")


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
