"""Validation-queue latency: intake to ``awaiting_review`` with Redis and one worker.

`python -m tests.benchmarks.queue` (needs PostgreSQL and Redis on 127.0.0.1). Starts a hub
(`serve --no-worker`) and one `telepharm worker` (default concurrency 2) on a fresh database,
sends NewRx messages open-loop at BENCH_RATE (200/s) for BENCH_SECONDS (60), waits for the
queue to drain (at most BENCH_DRAIN, 150 s), then reads each prescription's state history:
latency = the `awaiting_review` transition time minus the receipt time. Target (issue 14):
p95 under 300 ms, none left behind.

The patients are a realistic mix: each message's patient is drawn (seeded) from a pool of
BENCH_PATIENTS (5000) named patients, so most arrivals are a patient's first or second and
some coincide, each new one checking the patient's open prescriptions again (the whole
picture). BENCH_PATIENTS=1 is the old run: every message for the sample's one patient, a flood
for one picture. Printed beside the percentiles: a histogram by 50 ms, and where the time
went: receipt to the check's start (publishing, linger, the queue), the check itself (start to
awaiting review, its chunk's two transactions), and the checks run again.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from importlib import resources
from pathlib import Path

from tests.benchmarks.cpu import cpu_by_role
from tests.benchmarks.intake import (
    BIN,
    BROKER,
    DATABASE,
    free_port,
    paced,
    prepare_hub,
    process,
    psql,
    token_for,
    wait_port,
)
from tests.support.script_samples import oral_tablets

RATE = int(os.environ.get("BENCH_RATE", "200"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "5000"))
#: how long the queue may take to drain after the last message (a saturated worker's backlog)
DRAIN = int(os.environ.get("BENCH_DRAIN", "150"))
TARGET = 0.3
BUCKET = 0.05
FIRST_NAMES = ("ALEX", "SAM", "JORDAN", "TAYLOR", "CASEY", "MORGAN", "RILEY", "JAMIE")
SAMPLE_NAME = b"<LastName>TESTPATIENT</LastName><FirstName>ALEX</FirstName>"
SAMPLE_DRUG = b"<DrugDescription>lisinopril 10 MG Oral Tablet<"
#: per prescription: receipt to awaiting_review, receipt to the check's start, the check
TIMES_SQL = """
SELECT extract(epoch FROM r.at - p.received_at), extract(epoch FROM c.at - p.received_at),
       extract(epoch FROM r.at - c.at)
FROM prescriptions p
JOIN prescription_transitions r ON r.prescription_id = p.id AND r.to_state = 'awaiting_review'
JOIN prescription_transitions c ON c.prescription_id = p.id AND c.to_state = 'checking'
"""
#: prescriptions a chunk started together (one start_checks, one transition time)
CHUNK_SQL = """
SELECT count(*)::float / count(DISTINCT at) FROM prescription_transitions
WHERE to_state = 'checking'
"""
#: from the first check's start to the last one's end: the worker's sustained rate
SPAN_SQL = """
SELECT extract(epoch FROM max(at) - min(at)) FROM prescription_transitions
WHERE to_state IN ('checking', 'awaiting_review')
"""
AGAIN_SQL = (
    "SELECT count(*) FROM audit_events WHERE action = 'prescription.check'"
    " AND (detail->>'again')::boolean"
)


def letters(n: int) -> str:
    """``n`` as capital letters (patient names have no digits)."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(ord("A") + r) + out
        if not n:
            return out


def bodies(template: bytes, count: int, patients: int, seed: int = 14) -> list[bytes]:
    """``count`` NewRx from ``template``, each with its own MessageID and order number, for a
    patient drawn from a pool of ``patients`` (one: the sample's own patient and drug,
    unchanged: the flood) and a drug drawn from the bundled reference's oral tablets (one
    drug for everyone would make every patient's second script a duplicate of the first)."""
    rng = random.Random(seed)
    drugs = [name.encode() for name in oral_tablets()]
    out = []
    for i in range(count):
        body = template.replace(b"DEMO-MESSAGE-ID", f"queue-{i}-{rng.getrandbits(64):x}".encode())
        body = body.replace(b"DEMO-ORDER-1", f"QUEUE-ORDER-{i}".encode())
        if patients > 1:
            p = rng.randrange(patients)
            name = f"<LastName>QUEUE{letters(p)}</LastName>"
            name += f"<FirstName>{FIRST_NAMES[p % len(FIRST_NAMES)]}</FirstName>"
            body = body.replace(SAMPLE_NAME, name.encode())
            body = body.replace(SAMPLE_DRUG, b"<DrugDescription>" + rng.choice(drugs) + b"<")
        out.append(body)
    return out


def quantiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100)
    return {
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def histogram(latencies: list[float]) -> list[str]:
    """Counts by 50 ms up to 1 s, the rest in one line."""
    counts = Counter(min(int(x / BUCKET), 20) for x in latencies)
    widest = max(counts.values())
    lines = []
    for b in range(max(counts) + 1):
        label = f">= {20 * BUCKET * 1000:.0f}" if b == 20 else f"{b * 50:>4}-{b * 50 + 50:<4}"
        share = counts[b] / len(latencies)
        bar = "#" * round(40 * counts[b] / widest)
        lines.append(f"  {label:>9} ms {counts[b]:>6} {share:6.1%} {bar}")
    return lines


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    template = resources.files("server").joinpath("samples/newrx.xml").read_bytes()
    messages = bodies(template, RATE * SECONDS, PATIENTS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = prepare_hub(work, base, BROKER, TELEPHARM_LOG_LEVEL="WARNING")
    hub_cmd = [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"]
    worker_cmd = [str(BIN / "telepharm"), "worker"]  # one worker, default concurrency
    with (
        process(hub_cmd, env, work / "hub.log") as hub,
        process(worker_cmd, env, work / "worker.log") as worker,
    ):
        wait_port(port)
        time.sleep(3)  # the worker connects to the broker
        token = token_for(base, credentials)
        before = cpu_by_role({"hub": hub.pid, "worker": worker.pid}, DATABASE)
        sent = asyncio.run(
            paced(base + "/ncpdp/script", template, token, RATE, SECONDS, messages.__getitem__)
        )
        deadline = time.monotonic() + DRAIN
        while time.monotonic() < deadline and int(
            psql("SELECT count(*) FROM prescriptions WHERE state <> 'awaiting_review'")[0]
        ):
            time.sleep(0.5)
        after = cpu_by_role({"hub": hub.pid, "worker": worker.pid}, DATABASE)
        rows = [[float(x) for x in line.split("|")] for line in psql(TIMES_SQL)]
        left = int(psql("SELECT count(*) FROM prescriptions WHERE state <> 'awaiting_review'")[0])
        again = int(psql(AGAIN_SQL)[0])
        profiles = int(psql("SELECT count(DISTINCT patient_id) FROM prescriptions")[0])
        span = float(psql(SPAN_SQL)[0])
        chunk = float(psql(CHUNK_SQL)[0])
    latencies = sorted(r[0] for r in rows)
    result = {
        "rate": RATE,
        "seconds": SECONDS,
        "patient_pool": PATIENTS,
        "patients": profiles,
        "sent": sent["sent"],
        "errors": sent["errors"],
        "intake_p99_ms": sent["p99_ms"],
        "checked": len(latencies),
        "left_behind": left,
        "checked_again": again,
        "mean_chunk": round(chunk, 1),
        "checks_per_s_sustained": round(len(latencies) / span, 1),
        "cpu_ms_per_message": {
            k: round((after[k] - before[k]) * 1000 / max(len(latencies), 1), 2) for k in after
        },
        "worker_cpu_ms_per_check_incl_again": round(
            (after["worker"] - before["worker"]) * 1000 / max(len(latencies) + again, 1), 2
        ),
        "latency": quantiles(latencies),
        "receipt_to_check_start": quantiles([r[1] for r in rows]),
        "check_start_to_review": quantiles([r[2] for r in rows]),
    }
    print(json.dumps(result, indent=2))
    print("\nintake -> awaiting_review, by 50 ms:")
    print("\n".join(histogram(latencies)))
    lat = result["latency"]
    p95 = lat["p95_ms"] / 1000
    print(
        f"\nat {RATE}/s, {profiles} patients: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms"
        f" (target < {TARGET * 1000:.0f} ms: {'met' if p95 < TARGET else 'NOT met'};"
        f" p95/target {p95 / TARGET:.2f}), p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms;"
        f" {left} left behind (target 0); {again} checked again"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
