"""Validation-queue latency: intake to ``awaiting_review`` with Redis and one worker.

`python -m tests.benchmarks.queue` (needs PostgreSQL and Redis on 127.0.0.1). Starts a hub
(`serve --no-worker`) and one `telepharm worker` (default concurrency 2) on a fresh database, sends
NewRx messages open-loop at BENCH_RATE (100/s) for BENCH_SECONDS (60), waits for the queue to
drain, then reads each prescription's state history: latency = the `awaiting_review`
transition time minus the receipt time. Target (issue 3): p95 under 1 s, none left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from tests.benchmarks.intake import (
    BIN,
    BROKER,
    free_port,
    paced,
    prepare_hub,
    process,
    psql,
    token_for,
    wait_port,
)

RATE = int(os.environ.get("BENCH_RATE", "100"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
LATENCY_SQL = """
SELECT extract(epoch FROM r.at - p.received_at)
FROM prescriptions p JOIN prescription_transitions r
  ON r.prescription_id = p.id AND r.to_state = 'awaiting_review'
"""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    template = resources.files("server").joinpath("samples/newrx.xml").read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = prepare_hub(work, base, BROKER, TELEPHARM_LOG_LEVEL="WARNING")
    hub_cmd = [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"]
    worker_cmd = [str(BIN / "telepharm"), "worker"]  # one worker, default concurrency
    with process(hub_cmd, env, work / "hub.log"), process(worker_cmd, env, work / "worker.log"):
        wait_port(port)
        time.sleep(3)  # the worker connects to the broker
        token = token_for(base, credentials)
        sent = asyncio.run(paced(base + "/ncpdp/script", template, token, RATE, SECONDS))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and int(
            psql("SELECT count(*) FROM prescriptions WHERE state <> 'awaiting_review'")[0]
        ):
            time.sleep(0.5)
        latencies = sorted(float(x) for x in psql(LATENCY_SQL))
        left = int(psql("SELECT count(*) FROM prescriptions WHERE state <> 'awaiting_review'")[0])
    q = statistics.quantiles(latencies, n=100)
    print(
        json.dumps(
            {
                "rate": RATE,
                "seconds": SECONDS,
                "sent": sent["sent"],
                "errors": sent["errors"],
                "checked": len(latencies),
                "left_behind": left,
                "p50_s": round(q[49], 3),
                "p95_s": round(q[94], 3),
                "p99_s": round(q[98], 3),
                "max_s": round(latencies[-1], 3),
            },
            indent=2,
        )
    )
    print(
        f"\nintake -> awaiting_review at {RATE}/s: p95 {q[94]:.3f} s (target < 1 s), "
        f"{left} left behind (target 0)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
