"""What metrics cost the intake: `telepharm serve --no-worker` on PostgreSQL loaded with wrk
(tests/benchmarks/intake.py's load), metrics off and on, in alternating rounds so the machine's
other load falls on both alike.

Environment: BENCH_DATABASE (telepharm_bench), BENCH_BROKER, BENCH_SECONDS (8 a round),
BENCH_ROUNDS (2 of each), BENCH_CONNECTIONS (32). Needs PostgreSQL, Redis and wrk.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from tests.benchmarks import intake
from tests.support.processes import free_port, wait_port

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def one_round(work: Path, template: Path, metrics: bool, tag: str) -> dict[str, Any]:
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = intake.prepare_hub(
        work, base, intake.BROKER, TELEPHARM_METRICS="1" if metrics else "0"
    )
    command = [str(intake.BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"]
    if metrics:
        command += ["--metrics-port", str(metrics_port)]
    with intake.process(command, env, work / f"hub-{tag}.log") as hub:
        wait_port(port)
        token = intake.token_for(base, credentials)
        result = intake.wrk(base, template, token, tag, hub.pid)
        if metrics:  # the scrape shows what was counted
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=30) as response:
                text = response.read().decode()
            result["scrape_bytes"] = len(text)
    return result


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    template = work / "newrx.xml"
    template.write_bytes(resources.files("server").joinpath("samples/newrx.xml").read_bytes())
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for n in range(ROUNDS):
        for name in ("off", "on"):
            tag = f"{name}{n}{int(time.time())}"
            runs[name].append(one_round(work, template, name == "on", tag))
            print(name, json.dumps(runs[name][-1]), file=sys.stderr)
    summary = {
        name: {
            "rate": round(statistics.median(r["rate"] for r in rounds), 1),
            "cpu_ms_per_request": round(
                statistics.median(r["cpu_ms_per_request"] for r in rounds), 3
            ),
        }
        for name, rounds in runs.items()
    }
    summary["rate_ratio_on_off"] = round(summary["on"]["rate"] / summary["off"]["rate"], 3)
    summary["cpu_ratio_on_off"] = round(
        summary["on"]["cpu_ms_per_request"] / summary["off"]["cpu_ms_per_request"], 3
    )
    print(json.dumps(summary, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
