"""The pharmacist's product-check queue with 10,000 fills waiting (issue 16).

`python -m tests.benchmarks.product_check_queue` (PostgreSQL and Redis on 127.0.0.1, as
intake.py; about a minute). A hub process on a fresh database (``fill_hub.py``) with
BENCH_FILLS (10,000) fills in ``product_check``, inserted directly; a technician's token. First
the whole queue is walked once, page by page (BENCH_LIMIT, 50, a page), checking that every
fill comes once and in order, and keeping each page's cursor. Then, each with BENCH_CLIENTS (4)
clients asking one request after another, BENCH_REQUESTS (400) requests of:

- **first**: ``GET /api/v1/fills?state=product_check`` (the screen as it opens);
- **deep**: the same with ``after`` a cursor from the last tenth of the queue (pages past the
  9,000th fill: a keyset page costs what the first does, an offset would not);
- **bare**: a bare aiohttp handler in its own process answering a page of the same 50 items
  (encoded with ``json.dumps`` for each request): the floor.

Latency from each request's start to its body read. Target: p95 under 50 ms (first and deep);
printed beside it, the ratio to the bare handler's p95 in the same run and the hub's CPU a
request (the machine is shared: ratios and CPU are steadier than milliseconds).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.benchmarks.intake import cpu_seconds
from tests.support.processes import free_port, wait_port

FILLS = int(os.environ.get("BENCH_FILLS", "10000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
LIMIT = int(os.environ.get("BENCH_LIMIT", "50"))
TARGET_MS = 50.0


# --- the bare handler --------------------------------------------------------------------------


def serve_bare(port: int, page_file: str) -> None:
    """A page of the queue as JSON, encoded for each request: the floor of a listing."""
    from tests.benchmarks.baseline_server import serve as run

    page = json.loads(Path(page_file).read_text())

    async def listing(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(page).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/fills", listing)
    run(app, port)


@contextmanager
def bare_server(work: Path, page: dict[str, Any]) -> Iterator[tuple[str, int]]:
    port = free_port()
    page_file = work / "page.json"
    page_file.write_text(json.dumps(page))
    args = [sys.executable, "-m", "tests.benchmarks.product_check_queue", str(port), str(page_file)]
    with (work / "bare.log").open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


# --- the load ----------------------------------------------------------------------------------


async def walk(base: str, token: str) -> tuple[list[str], list[str | None], float]:
    """The whole queue page by page: the fills in order, each page's ``after`` (None for the
    first), and the walk's seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    seen: list[str] = []
    cursors: list[str | None] = [None]
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:
        after: str | None = None
        while True:
            params = {"state": "product_check", "limit": str(LIMIT)}
            if after:
                params["after"] = after
            async with session.get(f"{base}/api/v1/fills", params=params) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            seen.extend(item["id"] for item in page["items"])
            after = page["next"]
            if not after:
                break
            cursors.append(after)
    return seen, cursors, time.perf_counter() - started


async def load(
    url: str, token: str, params_for: Callable[[random.Random], dict[str, str]]
) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    counter = iter(range(REQUESTS))
    async with aiohttp.ClientSession(headers=headers) as session:

        async def client(seed: int) -> None:
            rng = random.Random(seed)
            for _ in counter:
                started = time.perf_counter()
                async with session.get(url, params=params_for(rng)) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client(seed) for seed in range(CLIENTS)))
    return latencies


def summary(latencies: list[float], cpu: float | None = None) -> dict[str, Any]:
    q = statistics.quantiles(latencies, n=100)
    result = {
        "requests": len(latencies),
        "p50_ms": round(q[49] * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }
    if cpu is not None:
        result["cpu_ms_per_request"] = round(cpu * 1000 / len(latencies), 2)
    return result


async def measure(
    name: str,
    url: str,
    token: str,
    pid: int,
    params_for: Callable[[random.Random], dict[str, str]],
) -> dict[str, Any]:
    await load(url, token, params_for)  # warm-up: the same again, not counted
    before = cpu_seconds(pid)
    latencies = await load(url, token, params_for)
    result = summary(latencies, cpu_seconds(pid) - before)
    print(name, json.dumps(result), flush=True)
    return result


def main() -> None:
    if len(sys.argv) > 1:  # the bare server process
        serve_bare(int(sys.argv[1]), sys.argv[2])
        return
    from tests.benchmarks.fill_hub import fill_hub

    work = Path(tempfile.mkdtemp(prefix="bench-product-check-"))
    results: dict[str, Any] = {
        "fills": FILLS,
        "limit": LIMIT,
        "clients": CLIENTS,
        "requests": REQUESTS,
    }
    try:
        started = time.perf_counter()
        with fill_hub(work, FILLS, "product_check") as hub:
            results["seed_s"] = round(time.perf_counter() - started, 1)
            seen, cursors, walked = asyncio.run(walk(hub.base, hub.token))
            assert seen == [str(f) for f in hub.fills], "the queue is not every fill in order"
            results["walk"] = {"pages": len(cursors), "seconds": round(walked, 2)}
            deep = [c for c in cursors[int(len(cursors) * 0.9) :] if c]
            url = f"{hub.base}/api/v1/fills"

            def first(rng: random.Random) -> dict[str, str]:
                return {"state": "product_check", "limit": str(LIMIT)}

            def deep_page(rng: random.Random) -> dict[str, str]:
                return {**first(rng), "after": rng.choice(deep)}

            results["first"] = asyncio.run(measure("first", url, hub.token, hub.pid, first))
            results["deep"] = asyncio.run(measure("deep", url, hub.token, hub.pid, deep_page))
            page = asyncio.run(_page(hub.base, hub.token))
        with bare_server(work, page) as (base, pid):
            results["bare"] = asyncio.run(
                measure("bare", f"{base}/api/v1/fills", "", pid, lambda rng: {})
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bare = results["bare"]["p95_ms"]
    for name in ("first", "deep"):
        results[name]["p95_ratio"] = round(results[name]["p95_ms"] / bare, 2)
    print(json.dumps(results, indent=2))
    for name in ("first", "deep"):
        r = results[name]
        print(
            f"{name} page p95 {r['p95_ms']} ms (target < {TARGET_MS:.0f}), "
            f"{r['p95_ratio']}x bare ({bare} ms), hub CPU {r['cpu_ms_per_request']} ms a request"
        )


async def _page(base: str, token: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
        session.get(
            f"{base}/api/v1/fills", params={"state": "product_check", "limit": str(LIMIT)}
        ) as response,
    ):
        page: dict[str, Any] = await response.json()
        return page


if __name__ == "__main__":
    main()
