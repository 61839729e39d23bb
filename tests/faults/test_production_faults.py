"""Faults in the production shape: `serve --no-worker` and a separate `telepharm worker`, on
PostgreSQL and a Redis broker, each reached through a fault proxy. Every scenario runs under a
steady NewRx load and ends with the checks of tests/faults/scenario.py."""

from __future__ import annotations

import time

import pytest

from tests.support.faultproxy import FaultProxy

from .cluster import mid_check, wait_for
from .conftest import BUS_URL, Rig, needs_servers
from .scenario import Fault, Run, under_load

pytestmark = [pytest.mark.slow, needs_servers]

#: a cut long enough for every pooled connection to be found dead and new ones refused
CUT = 4.0
#: a stall longer than a sender's deadline for one answer (tests/faults/load.py: 5 s)
STALL = 12.0


def _production(rig: Rig) -> None:
    rig.cluster.hub("--no-worker")
    rig.cluster.worker()


def test_hub_killed_mid_load_and_restarted(rig: Rig) -> None:
    _production(rig)
    hub = rig.cluster.processes[0]

    def fault(run: Run) -> None:
        # killed while answering, when it can, so that some answers are lost after the commit
        wait_for(lambda: run.load.in_flight > 0, 5, every=0.001)
        rig.cluster.kill(hub)
        rig.cluster.hub("--no-worker")

    under_load("hub SIGKILL", rig.cluster, rig.credentials, fault).verdict()


def test_worker_killed_mid_load_and_restarted(rig: Rig) -> None:
    _production(rig)
    worker = rig.cluster.processes[1]

    def fault(run: Run) -> None:
        mid_check(rig.cluster)
        rig.cluster.kill(worker)
        rig.cluster.worker()

    under_load("worker SIGKILL", rig.cluster, rig.credentials, fault).verdict()


def _cut(proxy: FaultProxy) -> Fault:
    def fault(run: Run) -> None:
        proxy.cut()
        time.sleep(CUT)
        proxy.restore()

    return fault


def test_database_cut(rig: Rig) -> None:
    _production(rig)
    under_load("database cut", rig.cluster, rig.credentials, _cut(rig.database)).verdict()


def test_database_flap(rig: Rig) -> None:
    _production(rig)

    def fault(run: Run) -> None:
        rig.database.flap(times=10, period=0.6)

    under_load("database flap", rig.cluster, rig.credentials, fault).verdict()


def test_database_stall(rig: Rig) -> None:
    _production(rig)

    def fault(run: Run) -> None:
        rig.database.stall()
        time.sleep(STALL)
        rig.database.restore()

    under_load("database stall", rig.cluster, rig.credentials, fault).verdict()


def test_broker_cut(rig: Rig) -> None:
    _production(rig)
    under_load("broker cut", rig.cluster, rig.credentials, _cut(rig.broker)).verdict()


@pytest.mark.skipif(not BUS_URL, reason="set TELEPHARM_TEST_REDIS_URL (the Redis bus)")
def test_redis_bus_cut(rig: Rig) -> None:
    _production(rig)
    assert rig.bus is not None
    under_load("redis bus cut", rig.cluster, rig.credentials, _cut(rig.bus)).verdict()
