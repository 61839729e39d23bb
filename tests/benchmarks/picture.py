"""The patient's picture through the worker: checks per second, and the re-check fan-out.

`python -m tests.benchmarks.picture` (PostgreSQL and Redis on 127.0.0.1; ``BENCH_SQLITE=1``
for a SQLite file instead of PostgreSQL). A hub (`serve --no-worker`) on a fresh database
receives every prescription through the real intake (NewRx posted with a sender's token; the
check tasks it publishes go to a Redis database nobody consumes); the checks run in this
process, on a :class:`server.worker.checking.Checker` as a worker builds it, so that only
``check_many`` is timed.

1. **Checks per second**: for each of :data:`PICTURES` (0, 5 and 50), ``BENCH_CHUNKS`` (3)
   chunks of 32 patients who already hold that many prescriptions (checked, then two in five
   approved: active; the rest awaiting review: open). Each patient then gets one new
   prescription; ``check_many`` runs over each chunk of 32 new ones, the cases interleaved
   chunk by chunk. A new prescription changes its patient's picture, so the chunk also checks
   again the patient's open prescriptions awaiting review (the fan-out, part of the cost).
   Printed: new prescriptions per second per core (this process's CPU, ``process_time``) and
   per wall second (the database's time included), checks run (new and again), the ratio to
   the empty picture.
2. **Fan-out**: ``BENCH_FANOUT`` (5) patients with 50 open prescriptions awaiting review and as
   many with none; one new prescription each, checked alone (``check_many([new])``), the two
   kinds alternating. Printed: the time of each kind (median), their ratio, the checks run
   again per arrival and the time per check again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from eprescribe.drugs import DrugReference
from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX
from server.drugs import reference_with_imports
from server.prescriptions.models import Prescription
from server.worker.checking import Checker, sync_engine
from tests.benchmarks.intake import BIN, NCPDPID, PG, cli, process
from tests.support.processes import free_port, wait_port
from tests.support.script_samples import newrx_xml
from tests.support.tokens import client_token

SQLITE = os.environ.get("BENCH_SQLITE") == "1"
DATABASE = os.environ.get("BENCH_PICTURE_DATABASE", "telepharm_bench_picture")
BROKER = os.environ.get("BENCH_PICTURE_BROKER", "redis://127.0.0.1:6379/13")
CHUNKS = int(os.environ.get("BENCH_CHUNKS", "3"))
FANOUT = int(os.environ.get("BENCH_FANOUT", "5"))
#: other prescriptions each patient holds, per case
PICTURES = (0, 5, 50)
#: new prescriptions per check_many, as the hub publishes them (server.worker.publisher.CHUNK)
CHUNK = 32
SIGS = (
    "Take 1 tablet by mouth twice daily",
    "Take 1 tablet by mouth once daily",
    "Take 1 capsule by mouth daily",
    "Take 1 tablet every 6 hours as needed for pain",
)


def letters(n: int) -> str:
    """``n`` as capital letters (patient names have no digits)."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(ord("A") + r) + out
        if not n:
            return out


class Messages:
    """Synthetic NewRx for named patients, drugs drawn from the reference (seeded)."""

    def __init__(self, reference: DrugReference, seed: int = 14) -> None:
        self._rng = random.Random(seed)
        self._drugs = [
            d for d in reference.drugs if len(d.name) <= DRUG_DESCRIPTION_MAX and not d.dea_schedule
        ]
        self._today = dt.datetime.now(dt.UTC).date().isoformat()

    def newrx(self, message_id: str, last: str, first: str) -> bytes:
        return newrx_xml(
            message_id=message_id,
            to=NCPDPID,
            sent_time=f"{self._today}T00:00:00Z",
            written_date=self._today,
            patient_last=last,
            patient_first=first,
            drug_description=self._rng.choice(self._drugs).name,
            refills=str(self._rng.choice([0, 1, 3])),
            sig_text=self._rng.choice(SIGS),
        )


@contextmanager
def hub() -> Iterator[tuple[str, dict[str, str], str]]:
    """A hub on a fresh database: its base URL, env and a sender's token."""
    work = Path(tempfile.mkdtemp(prefix="bench-picture-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if SQLITE:
        url = f"sqlite+aiosqlite:///{work / 'hub.db'}"
    else:
        drop, create = f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", drop, "-c", create]
        subprocess.run(psql, check=True)
        url = PG + DATABASE
    flush = ["redis-cli", "-n", BROKER.rsplit("/", 1)[1], "flushdb"]
    subprocess.run(flush, check=True, capture_output=True)
    env = dict(
        os.environ,
        TELEPHARM_DATABASE_URL=url,
        TELEPHARM_ISSUER=base,
        TELEPHARM_DATA_DIR=str(work / "var"),
        TELEPHARM_BROKER_URL=BROKER,
        TELEPHARM_LOG_LEVEL="WARNING",
    )
    cli(env, "migrate")
    cli(env, "pharmacy", "add", "--ncpdpid", NCPDPID, "--npi", "1000000004", "--name", "Bench")
    credentials = json.loads(cli(env, "client", "add", "--name", "bench", "--scope", "script:send"))
    try:
        with process(
            [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"],
            env,
            work / "hub.log",
        ):
            wait_port(port)
            token = client_token(
                base, credentials["client_id"], credentials["client_secret"], "script:send"
            )
            yield base, env, token
    finally:
        subprocess.run(flush, check=True, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


async def post_all(base: str, token: str, bodies: list[bytes]) -> None:
    """Post ``bodies`` to the hub, 16 at a time; every one must be acknowledged."""
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {token}"}
    gate = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:

        async def one(body: bytes) -> None:
            async with gate, session.post(base + "/ncpdp/script", data=body, headers=headers) as r:
                reply = await r.read()
            if r.status != 200 or b"<Status>" not in reply:
                raise RuntimeError(f"not acknowledged: {r.status} {reply[:200]!r}")

        await asyncio.gather(*(one(body) for body in bodies))


def ids_by_message(sessions: sessionmaker[Session], prefix: str) -> dict[str, uuid.UUID]:
    with sessions() as session:
        rows = session.execute(
            select(Prescription.message_id, Prescription.id).where(
                Prescription.message_id.like(prefix + "%")
            )
        ).all()
    return dict(rows)


class Bench:
    def __init__(self, base: str, token: str, checker: Checker, sessions: sessionmaker[Session]):
        self.base, self.token, self.checker, self.sessions = base, token, checker, sessions
        self.messages = Messages(DrugReference.bundled())

    def holding(self, tag: str, patients: int, size: int, active_share: float) -> list[str]:
        """``patients`` patients (named after ``tag``) with ``size`` prescriptions each,
        received, checked (one patient's at a time) and ``active_share`` of them approved.
        Returns the patients' last names."""
        names = [f"{tag}{letters(p)}" for p in range(patients)]
        bodies = [
            self.messages.newrx(f"{tag}-{p}-{k}", name, "ALEX")
            for p, name in enumerate(names)
            for k in range(size)
        ]
        if not bodies:
            return names
        asyncio.run(post_all(self.base, self.token, bodies))
        found = ids_by_message(self.sessions, f"{tag}-")
        approved: list[uuid.UUID] = []
        for p in range(patients):
            mine = [found[f"{tag}-{p}-{k}"] for k in range(size)]
            self.checker.check_many(mine)
            approved.extend(mine[: round(size * active_share)])
        if approved:
            with self.sessions.begin() as session:
                session.execute(
                    update(Prescription)
                    .where(Prescription.id.in_(approved))
                    .values(state="approved")
                )
        return names

    def arrivals(self, tag: str, names: list[str]) -> list[uuid.UUID]:
        """One new prescription for each patient (received, not checked), in ``names``'
        order."""
        bodies = [self.messages.newrx(f"{tag}-new-{p}", n, "ALEX") for p, n in enumerate(names)]
        asyncio.run(post_all(self.base, self.token, bodies))
        found = ids_by_message(self.sessions, f"{tag}-new-")
        return [found[f"{tag}-new-{p}"] for p in range(len(names))]

    def timed(self, ids: list[uuid.UUID]) -> tuple[float, float, int]:
        """CPU and wall seconds of one ``check_many``, and the checks it ran."""
        cpu, wall = time.process_time(), time.perf_counter()
        outcomes = self.checker.check_many(ids)
        return time.process_time() - cpu, time.perf_counter() - wall, len(outcomes)


def throughput(bench: Bench) -> dict[int, dict[str, Any]]:
    chunks: dict[int, list[list[uuid.UUID]]] = {}
    for size in PICTURES:
        tag = f"PIC{letters(size)}"
        names = bench.holding(tag, CHUNKS * CHUNK, size, 0.4)
        new = bench.arrivals(tag, names)
        chunks[size] = [new[i : i + CHUNK] for i in range(0, len(new), CHUNK)]
    totals: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for i in range(CHUNKS):
        for size in PICTURES:  # interleaved, so the machine's other load falls on each case
            cpu, wall, checks = bench.timed(chunks[size][i])
            totals[size][0] += cpu
            totals[size][1] += wall
            totals[size][2] += checks
    new = CHUNKS * CHUNK
    return {
        size: {
            "new": new,
            "checks": int(checks),
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "new_per_cpu_s": round(new / cpu, 1),
            "new_per_wall_s": round(new / wall, 1),
            "checks_per_cpu_s": round(checks / cpu, 1),
            "checks_per_wall_s": round(checks / wall, 1),
        }
        for size, (cpu, wall, checks) in totals.items()
    }


def fanout(bench: Bench) -> dict[str, Any]:
    crowded = bench.holding("FANB", FANOUT, 50, 0.0)
    alone = bench.holding("FANA", FANOUT, 0, 0.0)
    crowded_new = bench.arrivals("FANB", crowded)
    alone_new = bench.arrivals("FANA", alone)
    busy: list[tuple[float, float, int]] = []
    quiet: list[tuple[float, float, int]] = []
    for b, a in zip(crowded_new, alone_new, strict=True):
        busy.append(bench.timed([b]))
        quiet.append(bench.timed([a]))
    busy_wall = statistics.median(t[1] for t in busy)
    quiet_wall = statistics.median(t[1] for t in quiet)
    busy_cpu = statistics.median(t[0] for t in busy)
    quiet_cpu = statistics.median(t[0] for t in quiet)
    again = statistics.median(t[2] for t in busy) - 1
    return {
        "arrivals": FANOUT,
        "open_0_wall_ms": round(quiet_wall * 1000, 2),
        "open_0_cpu_ms": round(quiet_cpu * 1000, 2),
        "open_50_wall_ms": round(busy_wall * 1000, 2),
        "open_50_cpu_ms": round(busy_cpu * 1000, 2),
        "wall_ratio": round(busy_wall / quiet_wall, 1),
        "cpu_ratio": round(busy_cpu / quiet_cpu, 1),
        "checked_again": again,
        "wall_ms_per_check_again": round((busy_wall - quiet_wall) * 1000 / max(again, 1), 2),
        "cpu_ms_per_check_again": round((busy_cpu - quiet_cpu) * 1000 / max(again, 1), 2),
    }


def main() -> None:
    with hub() as (base, env, token):
        url = env["TELEPHARM_DATABASE_URL"].replace("+asyncpg", "+psycopg")
        engine = sync_engine(url.replace("+aiosqlite", ""))
        sessions = sessionmaker(engine, expire_on_commit=False)
        checker = Checker(sessions, reference_with_imports(engine))
        try:
            bench = Bench(base, token, checker, sessions)
            rates = throughput(bench)
            spread = fanout(bench)
        finally:
            checker.close()
    print(
        json.dumps(
            {
                "database": "sqlite" if SQLITE else "postgresql",
                "throughput": rates,
                "fanout": spread,
            },
            indent=2,
        )
    )
    zero = rates[PICTURES[0]]
    print(f"\ncheck_many over chunks of {CHUNK} new prescriptions ({CHUNKS} chunks a case):")
    for size, r in rates.items():
        print(
            f"  {size:>2} held: {r['new_per_cpu_s']:>7,.0f} new/s per core"
            f" (ratio {r['new_per_cpu_s'] / zero['new_per_cpu_s']:.3f}),"
            f" {r['new_per_wall_s']:>7,.0f} new/s wall"
            f" (ratio {r['new_per_wall_s'] / zero['new_per_wall_s']:.3f});"
            f" {r['checks']} checks ({r['checks'] - r['new']} again),"
            f" {r['checks_per_cpu_s']:,.0f} checks/s per core, {r['checks_per_wall_s']:,.0f} wall"
        )
    s = spread
    print(
        f"\none arrival, checked alone (median of {FANOUT}): 0 open {s['open_0_wall_ms']} ms"
        f" ({s['open_0_cpu_ms']} ms CPU), 50 open {s['open_50_wall_ms']} ms"
        f" ({s['open_50_cpu_ms']} ms CPU): ratio {s['wall_ratio']} wall, {s['cpu_ratio']} CPU;"
        f" {s['checked_again']} checked again, {s['wall_ms_per_check_again']} ms each"
        f" ({s['cpu_ms_per_check_again']} ms CPU)"
    )


if __name__ == "__main__":
    sys.exit(main())
