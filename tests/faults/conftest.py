"""Rigs for the fault scenarios: PostgreSQL, the Redis broker and the Redis bus each behind a
fault proxy (needs TELEPHARM_TEST_DATABASE_URL and TELEPHARM_TEST_BROKER_URL), or the embedded
mode on SQLite (always)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from server.admin import ClientCredentials
from tests.conftest import _truncate
from tests.support.faultproxy import FaultProxy

from .cluster import Cluster, via

PG_URL = os.environ.get("TELEPHARM_TEST_DATABASE_URL", "")
BROKER_URL = os.environ.get("TELEPHARM_TEST_BROKER_URL", "")
BUS_URL = os.environ.get("TELEPHARM_TEST_REDIS_URL", "")

needs_servers = pytest.mark.skipif(
    not (PG_URL and BROKER_URL),
    reason="set TELEPHARM_TEST_DATABASE_URL and TELEPHARM_TEST_BROKER_URL (PostgreSQL, Redis)",
)


@dataclass
class Rig:
    cluster: Cluster
    credentials: ClientCredentials
    database: FaultProxy
    broker: FaultProxy
    bus: FaultProxy | None


def _proxy(stack: ExitStack, url: str, default_port: int) -> FaultProxy:
    parts = urlsplit(url)
    target = FaultProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    return stack.enter_context(target)


@pytest.fixture
def rig(tmp_path: Path, migrated_postgres: str) -> Iterator[Rig]:
    """Hub processes (started by the test) that reach PostgreSQL, the broker and the bus only
    through fault proxies; a fresh database and an empty broker."""
    asyncio.run(_truncate(migrated_postgres))
    redis.Redis.from_url(BROKER_URL).flushdb()
    with ExitStack() as stack:
        database = _proxy(stack, PG_URL, 5432)
        broker = _proxy(stack, BROKER_URL, 6379)
        bus = _proxy(stack, BUS_URL, 6379) if BUS_URL else None
        env = {
            "TELEPHARM_DATABASE_URL": via(PG_URL, database.port),
            "TELEPHARM_BROKER_URL": via(BROKER_URL, broker.port),
        }
        if bus is not None:
            env["TELEPHARM_REDIS_URL"] = via(BUS_URL, bus.port)
        cluster = Cluster(tmp_path, migrated_postgres, env)
        try:
            yield Rig(cluster, cluster.seed(), database, broker, bus)
        finally:
            cluster.stop()
            cluster.reap()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Cluster, ClientCredentials]]:
    """The laptop shape: SQLite and the SQLite-backed broker in the data dir, no servers."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'hub.sqlite3'}"
    cluster = Cluster(tmp_path, database_url, {})
    migrated = cluster.cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    try:
        yield cluster, cluster.seed()
    finally:
        cluster.stop()
        cluster.reap()
