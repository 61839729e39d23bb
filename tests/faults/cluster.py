"""The hub's real processes for one fault scenario, and what the test reads back afterwards.

Every process a cluster starts carries a tag in its environment, which its children inherit
(the embedded worker, Celery's pool processes), so whatever survives the scenario is found by
a scan of /proc, whoever its parent now is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import create_engine, func, select, text

from server import admin
from server.db import Database
from server.prescriptions.models import Prescription
from tests.support.processes import free_port, launch, run_cli, stop, tagged, wait_port

TAG = "TELEPHARM_FAULT_SUITE_RUN"
PHARMACY = {"ncpdpid": "1234567", "npi": "1000000004", "name": "Fault Pharmacy"}
#: short enough that a prescription whose check was lost is queued again within seconds
SWEEP = {"TELEPHARM_SWEEP_INTERVAL": "1", "TELEPHARM_STUCK_AFTER": "5"}


def wait_for(condition: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def via(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the fault proxy on 127.0.0.1:``port``."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Cluster:
    def __init__(self, work: Path, database_url: str, env: dict[str, str]) -> None:
        self.work = work
        self.database_url = database_url  # direct, for the test's own reads
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tag = uuid.uuid4().hex
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
        self.env = {
            **inherited,
            "TELEPHARM_ISSUER": self.base,
            "TELEPHARM_DATA_DIR": str(work / "var"),
            **SWEEP,
            TAG: self.tag,
            **env,
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.work / f"{args[0]}-{len(self.processes)}.log"
        self.processes.append(launch(self.env, *args, log=log))
        return self.processes[-1]

    def hub(self, *args: str) -> subprocess.Popen[bytes]:
        process = self.start("serve", "--port", str(self.port), *args)
        wait_port(self.port, 60)
        return process

    def worker(self) -> subprocess.Popen[bytes]:
        return self.start("worker", "--concurrency", "2")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args)

    def seed(self) -> admin.ClientCredentials:
        """The receiving pharmacy and one sending client (the database is migrated)."""

        async def work() -> admin.ClientCredentials:
            db = Database(self.database_url)
            try:
                await admin.add_pharmacy(db, **PHARMACY)
                return await admin.add_client(
                    db, name="fault load", scope="script:send", pharmacy_ncpdpid=None
                )
            finally:
                await db.close()

        return asyncio.run(work())

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        stop(self.processes)

    def leftovers(self) -> list[int]:
        """Live processes carrying this cluster's tag."""
        return tagged(f"{TAG}={self.tag}".encode())

    def reap(self) -> None:
        """End every leftover of this cluster, by process id (test clean-up, not a check)."""
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue


def mid_check(cluster: Cluster) -> None:
    """Return when a worker holds a prescription in ``checking`` (or after a few seconds), so
    that a worker killed now dies with a check in hand."""
    records = Records(cluster.database_url)
    try:
        wait_for(lambda: records.in_states("checking") > 0, 5, every=0.005)
    finally:
        records.close()


class Records:
    """What the hub stored, read directly from its database (not through any proxy)."""

    def __init__(self, database_url: str) -> None:
        sync_url = database_url.replace("+asyncpg", "+psycopg").replace("+aiosqlite", "")
        self._engine = create_engine(sync_url)

    def stored(self) -> dict[str, tuple[int, int]]:
        """Per MessageID: how many original messages, and prescriptions made from them."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT m.message_id, count(DISTINCT m.id), count(DISTINCT p.id)"
                    " FROM inbound_messages m"
                    " LEFT JOIN prescriptions p ON p.inbound_message_id = m.id"
                    " GROUP BY m.message_id"
                )
            )
            return {message_id: (int(m), int(p)) for message_id, m, p in rows}

    def checks(self) -> list[tuple[str, str, int]]:
        """(MessageID, state, how many times its checks were done) per prescription."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT p.message_id, p.state,"
                    " (SELECT count(*) FROM prescription_transitions t"
                    "  WHERE t.prescription_id = p.id AND t.reason = 'checks done')"
                    " FROM prescriptions p"
                )
            )
            return [(m, s, int(n)) for m, s, n in rows]

    def unchecked(self) -> int:
        return self.in_states("received", "checking")

    def in_states(self, *states: str) -> int:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(func.count()).select_from(Prescription).where(Prescription.state.in_(states))
            )
            return int(found.scalar_one())

    def close(self) -> None:
        self._engine.dispose()
