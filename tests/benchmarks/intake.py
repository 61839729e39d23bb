"""Intake benchmark: durable NewRx intake on PostgreSQL against a parse-only aiohttp baseline.

Run with `make bench` (needs PostgreSQL on 127.0.0.1 and `wrk`). In one run it
1. starts the bare baseline (tests/benchmarks/baseline_server.py) and loads it with wrk;
2. starts `telepharm serve` on a fresh PostgreSQL database and loads it the same way;
3. sends an open-loop 200 msg/s stream to the hub and measures latency from the scheduled send
   time (no coordinated omission);
4. checks that every acknowledged message is stored, and prints messages/s, p50/p99, the ratio.
Environment: BENCH_DATABASE (default telepharm_bench), BENCH_SECONDS (15), BENCH_CONNECTIONS (32).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.processes import free_port, wait_port
from tests.support.tokens import client_token

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
PG = "postgresql+asyncpg://postgres@127.0.0.1/"
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
DATABASE = os.environ.get("BENCH_DATABASE", "telepharm_bench")
NCPDPID = "1234567"


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, template: Path, token: str, tag: str, pid: int | None, patients: int = 1
) -> dict[str, Any]:
    """Load the server with wrk (the messages spread over ``patients``); also its CPU time
    per request (of process ``pid``), steadier than rates here."""
    cpu = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--latency",
            "-s",
            str(HERE / "newrx.lua"),
            url,
            "--",
            str(template),
            token,
            tag,
            str(patients),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    cpu_ms = round((cpu_seconds(pid) - cpu) * 1000 / max(total, 1), 3) if pid else None
    return {
        "cpu_ms_per_request": cpu_ms,
        "rate": rate,
        "total": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "p50": lat.get("50"),
        "p99": lat.get("99"),
    }


async def paced(
    url: str,
    template: bytes,
    token: str,
    rate: int,
    seconds: int,
    body_for: Callable[[int], bytes] | None = None,
) -> dict[str, Any]:
    """Open loop: request i is due at t0 + i/rate; latency counts from when it was due.
    Request i's body is ``body_for(i)``, or ``template`` with a fresh MessageID."""
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(due: float, body: bytes) -> None:
            nonlocal errors
            async with session.post(url, data=body, headers=headers) as response:
                reply = await response.read()
            if response.status != 200 or b"<Status>" not in reply:
                errors += 1
            latencies.append(time.perf_counter() - due)

        t0 = time.perf_counter() + 0.2
        tasks = []
        for i in range(rate * seconds):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = (
                body_for(i)
                if body_for
                else template.replace(b"DEMO-MESSAGE-ID", f"paced-{uuid.uuid4().hex[:28]}".encode())
            )
            tasks.append(asyncio.create_task(one(due, body)))
        await asyncio.gather(*tasks)
    q = statistics.quantiles(latencies, n=100)
    return {
        "rate": rate,
        "sent": len(latencies),
        "errors": errors,
        "p50_ms": round(q[49] * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [str(BIN / "telepharm"), *args], env=env, capture_output=True, text=True, check=True
    ).stdout


def reset_database() -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            f"DROP DATABASE IF EXISTS {DATABASE}",
            "-c",
            f"CREATE DATABASE {DATABASE}",
        ],
        check=True,
    )


def psql(sql: str) -> list[str]:
    """The rows of ``sql`` in the benchmark's database, one line each."""
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def stored_messages() -> int:
    return int(psql("SELECT count(*) FROM inbound_messages")[0])


def token_for(base: str, credentials: dict[str, str]) -> str:
    return client_token(base, credentials["client_id"], credentials["client_secret"], "script:send")


BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/14")


def prepare_hub(work: Path, base: str, broker: str, **extra: str) -> tuple[dict[str, str], Any]:
    """A fresh PostgreSQL database with one pharmacy and one sender; production shape: checks
    are published to ``broker`` and workers run elsewhere. Returns the env and credentials."""
    reset_database()
    subprocess.run(
        ["redis-cli", "-n", broker.rsplit("/", 1)[1], "flushdb"],
        check=True,
        capture_output=True,
    )
    env = dict(
        os.environ,
        TELEPHARM_DATABASE_URL=PG + DATABASE,
        TELEPHARM_ISSUER=base,
        TELEPHARM_DATA_DIR=str(work / "var"),
        TELEPHARM_BROKER_URL=broker,
        **extra,
    )
    cli(env, "migrate")
    cli(env, "pharmacy", "add", "--ncpdpid", NCPDPID, "--npi", "1000000004", "--name", "Bench")
    credentials = json.loads(cli(env, "client", "add", "--name", "bench", "--scope", "script:send"))
    return env, credentials


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    template = work / "newrx.xml"
    template.write_bytes(resources.files("server").joinpath("samples/newrx.xml").read_bytes())
    results: dict[str, Any] = {"seconds": SECONDS, "connections": CONNECTIONS}

    port = free_port()
    with process(
        [sys.executable, str(HERE / "baseline_server.py"), str(port)],
        dict(os.environ),
        work / "baseline.log",
    ) as baseline:
        wait_port(port)
        url = f"http://127.0.0.1:{port}"
        results["baseline"] = wrk(url, template, "", "base", baseline.pid)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = prepare_hub(work, base, BROKER)
    with process(
        [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"], env, work / "hub.log"
    ) as hub:
        wait_port(port)
        token = token_for(base, credentials)
        results["hub"] = wrk(base, template, token, f"hub{int(time.time())}", hub.pid)
        results["hub_paced_200"] = asyncio.run(
            paced(base + "/ncpdp/script", template.read_bytes(), token, 200, SECONDS)
        )
    stored = stored_messages()
    expected = results["hub"]["total"] - results["hub"]["non2xx"] + results["hub_paced_200"]["sent"]
    results["stored"] = stored
    results["acknowledged_at_least"] = expected
    results["ratio"] = round(results["hub"]["rate"] / results["baseline"]["rate"], 3)
    results["cpu_ratio"] = round(
        results["baseline"]["cpu_ms_per_request"] / results["hub"]["cpu_ms_per_request"], 3
    )
    print(json.dumps(results, indent=2))
    report(results)
    shutil.rmtree(work, ignore_errors=True)


def report(r: dict[str, Any]) -> None:
    b, h, p = r["baseline"], r["hub"], r["hub_paced_200"]
    print(
        f"\nbaseline (parse only): {b['rate']:.0f}/s  p50 {b['p50']}  p99 {b['p99']}"
        f"  CPU {b['cpu_ms_per_request']} ms/request"
    )
    print(
        f"hub (durable, PostgreSQL): {h['rate']:.0f}/s  p50 {h['p50']}  p99 {h['p99']}"
        f"  non-2xx {h['non2xx']}"
    )
    print(
        f"ratio hub/baseline: {r['ratio']:.1%}  (target >= 15% and >= 500/s);"
        f"  CPU-cost ratio baseline/hub: {r['cpu_ratio']:.1%}"
    )
    print(
        f"hub at 200 msg/s: p50 {p['p50_ms']} ms  p99 {p['p99_ms']} ms  errors {p['errors']}"
        f"  (target p99 < 100 ms)"
    )
    print(f"stored {r['stored']} messages for {r['acknowledged_at_least']} acknowledged")


if __name__ == "__main__":
    main()
