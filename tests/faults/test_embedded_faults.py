"""Faults in the embedded shape (`telepharm serve` with its own worker, SQLite, the SQLite
broker): the worker killed, then the hub killed. Runs without any server."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from server.admin import ClientCredentials
from tests.support.processes import command_line, descendants

from .cluster import Cluster, mid_check, wait_for
from .scenario import EXIT_GRACE, Run, under_load

pytestmark = pytest.mark.slow


def _embedded_worker(hub: subprocess.Popen[bytes]) -> int:
    found: list[int] = []

    def started() -> bool:
        found[:] = [p for p in descendants(hub.pid) if " worker" in command_line(p)]
        return bool(found)

    assert wait_for(started, 60), "the hub started no worker"
    return found[0]


def test_embedded_worker_killed_mid_load(embedded: tuple[Cluster, ClientCredentials]) -> None:
    cluster, credentials = embedded
    hub = cluster.hub()
    worker = _embedded_worker(hub)

    def fault(run: Run) -> None:
        mid_check(cluster)
        os.kill(worker, signal.SIGKILL)

    under_load("embedded worker SIGKILL", cluster, credentials, fault).verdict()


def test_embedded_hub_killed_mid_load(embedded: tuple[Cluster, ClientCredentials]) -> None:
    cluster, credentials = embedded
    hub = cluster.hub()
    _embedded_worker(hub)

    def fault(run: Run) -> None:
        cluster.kill(hub)
        gone = wait_for(lambda: not cluster.leftovers(), EXIT_GRACE)
        orphans = [command_line(pid) for pid in cluster.leftovers()]
        run.check(gone, f"the killed hub left processes running: {orphans}")
        cluster.reap()  # so that what follows measures the restarted hub alone
        cluster.hub()

    under_load("embedded hub SIGKILL", cluster, credentials, fault).verdict()
