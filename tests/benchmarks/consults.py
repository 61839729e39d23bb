"""Consult signaling capacity of one hub process (issue 5), signaling only: media is P2P.

`python -m tests.benchmarks.consults` (PostgreSQL and Redis on 127.0.0.1, like the other
benchmarks). On a fresh database it starts one `telepharm serve --no-worker` process, signs a
pharmacist in through the real browser flow, schedules BENCH_CONSULTS (2000) consults plus
BENCH_PROBES (200), then, from this process:
1. opens every consult as a call would: the pharmacist's socket joins, the patient's joins
   with the invite, the pharmacist admits, both get ``admitted``, and the sockets stay open
   (4,000 WebSockets for 2,000 consults);
2. reads the hub's RSS before and after the BENCH_CONSULTS (after BENCH_WARM_UP (200) more,
   opened first and kept open, have grown the one-time state): memory per open consult;
3. keeps them busy (each side pings every 10 s, each patient reports stats every 5 s) and runs
   the probes, open loop at BENCH_PROBE_RATE (10) a second: for each, the pharmacist joins,
   the patient joins, and the time from the patient's ``join`` to its ``admitted`` (the
   pharmacist admitting on ``peer_joined``) is measured;
4. prints open consults, KB per consult, join-to-admitted p50/p99, the hub's CPU, and the
   times of a ``GET /healthz`` every 20 ms during the probes (how long the hub's loop was held);
   BENCH_PROFILE=FILE records the hub with py-spy during the probes (its sampling stops the
   process: a profiled run's latencies are not figures);
and, first, the same number of socket pairs held open by a bare aiohttp WebSocket handler
(baseline_ws.py): the floor the memory per consult is compared with.
Targets: >= 2,000 open consults, <= 30 KB each, join-to-admitted p99 < 100 ms.
BENCH_REDIS=1 puts the hub on the Redis bus (as production with several processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import asyncpg

from tests.benchmarks.intake import (
    BIN,
    BROKER,
    DATABASE,
    NCPDPID,
    cpu_seconds,
    free_port,
    prepare_hub,
    process,
    wait_port,
)
from tests.benchmarks.production_intake import spy
from tests.support.signin import sign_in

CONSULTS = int(os.environ.get("BENCH_CONSULTS", "2000"))
PROBES = int(os.environ.get("BENCH_PROBES", "200"))
#: new consults a second during the probes, open loop: 2,000 consults of 15 minutes see about
#: 2 a second; this is five times that
PROBE_RATE = float(os.environ.get("BENCH_PROBE_RATE", "10"))
WARM_UP = int(os.environ.get("BENCH_WARM_UP", "200"))
#: consults opened at once (a clinic's morning, not a thundering herd)
JOINING = 8
REDIS = os.environ.get("BENCH_REDIS", "") == "1"
PASSWORD = "a long and private passphrase for load"
SCOPE = "openid consults"
CONSENT = "telehealth-consent-v1"
#: a file for py-spy's raw profile of the hub during the probes
PROFILE = os.environ.get("BENCH_PROFILE", "")
#: BENCH_CLIENT_GC=1 leaves this process's collector on during the probes (by default it is
#: off then: this process holds as many sockets as the hub, and its own pauses would be
#: counted in the hub's latencies)
CLIENT_GC = os.environ.get("BENCH_CLIENT_GC", "") == "1"


def telepharm(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [str(BIN / "telepharm"), *args], env=env, input=stdin, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"telepharm {args[0]} failed: {done.stderr}")
    return done.stdout


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def add_patients(count: int) -> list[str]:
    """Synthetic patients of the bench pharmacy, straight into the database."""
    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1/{DATABASE}")
    try:
        pharmacy = await conn.fetchval("SELECT id FROM pharmacies WHERE ncpdpid = $1", NCPDPID)
        ids = [uuid.uuid4() for _ in range(count)]
        await conn.executemany(
            "INSERT INTO patients (id, pharmacy_id, last_name_key, first_name_key,"
            " date_of_birth, gender, postal_code, demographics, created_at,"
            " updated_at) VALUES ($1, $2, 'BENCH', 'PATIENT', '1970-01-01', 'F', '00000',"
            " '{}', now(), now())",
            [(i, pharmacy) for i in ids],
        )
    finally:
        await conn.close()
    return [str(i) for i in ids]


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(j) for j in jobs))


async def open_loop(rate: float, jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Job i starts at t0 + i/rate whatever the others are doing (no coordinated omission)."""
    t0 = time.perf_counter()
    started = []
    for index, job in enumerate(jobs):
        await asyncio.sleep(max(0.0, t0 + index / rate - time.perf_counter()))
        started.append(asyncio.create_task(job()))
    return await asyncio.gather(*started)


class Socket:
    """One side's signaling socket: messages by type as they arrive."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.on: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        #: the token of the last ``joined``, to come back with after a drop
        self.resume = ""
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if message["type"] == "joined":
                self.resume = message["resume"]
            waiter = self.waiters.pop(message["type"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            handler = self.on.get(message["type"])
            if handler is not None:
                await handler(message)

    def expect(self, kind: str) -> asyncio.Future[dict[str, Any]]:
        future = self.waiters[kind] = asyncio.get_running_loop().create_future()
        return future

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token
        self.ws_url = base.replace("http", "ws", 1) + "/ws/consult"

    async def schedule(self, patient_id: str) -> tuple[str, str]:
        async with self.session.post(
            f"{self.base}/api/v1/consults",
            json={"patient_id": patient_id},
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            body = await response.json()
            assert response.status == 200, body
        return body["id"], body["invite_url"].rsplit("/", 1)[1]

    async def socket(self) -> Socket:
        ws = await self.session.ws_connect(
            self.ws_url, headers={"Origin": self.base}, heartbeat=None, autoping=True
        )
        return Socket(ws)

    async def pharmacist(self, consult_id: str) -> Socket:
        side = await self.socket()
        joined = side.expect("joined")

        async def admit(message: dict[str, Any]) -> None:
            if message["role"] == "patient":
                await side.send(type="admit")

        side.on["peer_joined"] = admit
        await side.send(type="join", access_token=self.token, consult_id=consult_id)
        await asyncio.wait_for(joined, 30)
        return side

    async def patient(self, invite: str) -> tuple[Socket, float]:
        """The patient joins; seconds from its join to its ``admitted``."""
        side = await self.socket()
        admitted = side.expect("admitted")
        started = time.perf_counter()
        await side.send(type="join", invite=invite, consent_version=CONSENT)
        await asyncio.wait_for(admitted, 30)
        return side, time.perf_counter() - started

    async def open_call(self, consult_id: str, invite: str) -> tuple[Socket, Socket, float]:
        pharmacist = await self.pharmacist(consult_id)
        patient, latency = await self.patient(invite)
        return pharmacist, patient, latency


async def keep_busy(sockets: list[tuple[Socket, Socket]], stop: asyncio.Event) -> int:
    """Pings from both sides every 10 s and stats from the patient every 5 s, spread out."""
    sent = 0
    stats = {"type": "stats", "bitrate_kbps": 700.0, "fps": 30.0, "packet_loss": 0.1}
    started = time.perf_counter()
    tick = 0
    while not stop.is_set():
        tick += 1
        for index, (pharmacist, patient) in enumerate(sockets):
            if (index + tick) % 50 == 0:  # each consult every 50 ticks of 0.1 s: 5 s
                await patient.ws.send_str(json.dumps({**stats, "rtt_ms": random.uniform(5, 40)}))
                sent += 1
            if (index + tick) % 100 == 0:  # and pings every 10 s
                await pharmacist.send(type="ping")
                await patient.send(type="ping")
                sent += 2
        await asyncio.sleep(max(0.0, started + tick * 0.1 - time.perf_counter()))
    return sent


async def loop_lag(base: str, stop: asyncio.Event) -> list[float]:
    """``GET /healthz`` every 20 ms until ``stop``: its answer needs nothing but the hub's
    loop, so its times show how long the loop was held (a probe's tail that they share is
    the loop's; one they do not is the join's own path: the database, its locks, the pool)."""
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            started = time.perf_counter()
            async with session.get(f"{base}/healthz") as response:
                await response.read()
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    return times


async def run(base: str, token: str, pid: int) -> dict[str, Any]:
    patients = await add_patients(WARM_UP + CONSULTS + PROBES)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(session, base, token)
        consults = await bounded(16, [lambda p=p: client.schedule(p) for p in patients])
        warm, opened, probes = (
            consults[:WARM_UP],
            consults[WARM_UP : WARM_UP + CONSULTS],
            consults[WARM_UP + CONSULTS :],
        )
        # the first consults grow the hub's one-time state (connection pool, statement
        # caches): they stay open, and the memory per consult is measured after them
        warmed = await bounded(JOINING, [lambda c=c: client.open_call(*c) for c in warm])
        await asyncio.sleep(2)
        rss_before = rss_kb(pid)
        t0 = time.perf_counter()
        calls = await bounded(JOINING, [lambda c=c: client.open_call(*c) for c in opened])
        open_seconds = time.perf_counter() - t0
        await asyncio.sleep(5)  # let the hub settle (GC, buffers)
        rss_after = rss_kb(pid)
        calls = [*warmed, *calls]
        sockets = [(ph, pt) for ph, pt, _ in calls]

        if not CLIENT_GC:
            gc.collect()
            gc.freeze()
            gc.disable()
        stop = asyncio.Event()
        busy = asyncio.create_task(keep_busy(sockets, stop))
        lag = asyncio.create_task(loop_lag(base, stop))
        cpu0, wall0, mine0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
        spying = spy(pid, PROBES / PROBE_RATE, Path(PROFILE)) if PROFILE else None
        probes_from = time.time()
        probed = await open_loop(PROBE_RATE, [lambda c=c: client.open_call(*c) for c in probes])
        probes_until = time.time()
        probe_wall = time.perf_counter() - wall0
        hub_cpu = (cpu_seconds(pid) - cpu0) / probe_wall
        client_cpu = (time.process_time() - mine0) / probe_wall
        stop.set()
        sent = await busy
        healthz = sorted(await lag)
        gc.enable()
        gc.unfreeze()
        if spying is not None:
            spying.wait()
        latencies = sorted(latency for _, _, latency in probed)
        for pharmacist, patient, _ in [*calls, *probed]:
            await pharmacist.ws.close()
            await patient.ws.close()
    q = statistics.quantiles(latencies, n=100)
    return {
        "open_consults": len(calls),
        "open_sockets": 2 * len(calls),
        "open_seconds": round(open_seconds, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "kb_per_consult": round((rss_after - rss_before) / CONSULTS, 1),
        "open_first_join_to_admitted_p50_ms": round(
            statistics.median(c[2] for c in calls) * 1000, 1
        ),
        "probes": len(probed),
        "join_to_admitted_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "join_to_admitted_p90_ms": round(q[89] * 1000, 1),
        "join_to_admitted_p99_ms": round(q[98] * 1000, 1),
        "healthz_p50_p99_max_ms": [
            round(statistics.median(healthz) * 1000, 1),
            round(statistics.quantiles(healthz, n=100)[98] * 1000, 1),
            round(healthz[-1] * 1000, 1),
        ],
        "background_messages_per_s": round(sent / probe_wall, 1),
        "probes_unix_time": [round(probes_from, 1), round(probes_until, 1)],
        "hub_cpu_during_probes": f"{hub_cpu:.0%} of a core",
        "load_generator_cpu_during_probes": f"{client_cpu:.0%} of a core",
    }


async def bare_floor(port: int, pid: int, pairs: int) -> float:
    """KB of RSS per pair of sockets held open by the bare aiohttp handler (after a warm-up
    of WARM_UP pairs, as for the hub)."""
    url = f"http://127.0.0.1:{port}/ws"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def pair() -> list[aiohttp.ClientWebSocketResponse]:
            sockets = [await session.ws_connect(url, heartbeat=None) for _ in range(2)]
            for ws in sockets:
                await ws.send_str("x" * 200)
                await ws.receive()
            return sockets

        kept = await bounded(JOINING, [pair for _ in range(WARM_UP)])
        await asyncio.sleep(2)
        before = rss_kb(pid)
        kept += await bounded(JOINING, [pair for _ in range(pairs)])
        await asyncio.sleep(5)
        floor = (rss_kb(pid) - before) / pairs
        for sockets in kept:
            for ws in sockets:
                await ws.close()
    return floor


def prepare_consult_hub(work: Path, base: str, **extra: str) -> tuple[dict[str, str], str, str]:
    """A fresh hub database with a pharmacist and the browser console registered; the
    environment, the console's client ID and the pharmacist's TOTP seed."""
    env, _ = prepare_hub(work, base, BROKER, TELEPHARM_LOG_LEVEL="WARNING", **extra)
    added = telepharm(
        env,
        *["user", "add", "--pharmacy", NCPDPID, "--username", "bench", "--role", "pharmacist"],
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    uri = next(line for line in added.splitlines() if line.startswith("otpauth://"))
    seed = parse_qs(urlparse(uri).query)["secret"][0]
    console = telepharm(
        env, "client", "add", "--name", "console", "--scope", SCOPE, "--redirect-uri", f"{base}/cb"
    )
    client_id = re.search(r'"client_id": "([^"]+)"', console)
    assert client_id is not None
    return env, client_id.group(1), seed


@contextlib.contextmanager
def consult_hub(work: Path, **extra: str) -> Iterator[tuple[str, str, int]]:
    """A hub process on a fresh database with a signed-in pharmacist: its base URL, the
    pharmacist's access token and the hub's PID."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, client_id, seed = prepare_consult_hub(work, base, **extra)
    with process(
        [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"], env, work / "hub.log"
    ) as hub:
        wait_port(port)
        yield base, sign_in(base, client_id, seed, SCOPE, "bench", PASSWORD), hub.pid


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-consults-"))
    port = free_port()
    with process(
        [sys.executable, "-m", "tests.benchmarks.baseline_ws", str(port)],
        dict(os.environ),
        work / "ws.log",
    ) as bare:
        wait_port(port)
        floor = asyncio.run(bare_floor(port, bare.pid, CONSULTS))
    extra = {"TELEPHARM_REDIS_URL": "redis://127.0.0.1:6379/13"} if REDIS else {}
    with consult_hub(work, **extra) as (base, token, pid):
        results = asyncio.run(run(base, token, pid))
    results["bare_aiohttp_kb_per_socket_pair"] = round(floor, 1)
    results["kb_per_consult_over_bare"] = round(results["kb_per_consult"] / floor, 2)
    results["bus"] = "redis" if REDIS else "in-process"
    print(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
