"""Intake through the production topology (issue 19), against the parse-only baseline and the
default single-process hub, in one run.

`python -m tests.benchmarks.production_intake` (PostgreSQL and Redis on 127.0.0.1, nginx,
coturn, openssl and wrk installed). Three phases, each loaded by wrk with BENCH_CONNECTIONS (32)
connections for BENCH_SECONDS (15) seconds, the messages spread over BENCH_PATIENTS (5,000)
patients:
1. the bare baseline (tests/benchmarks/baseline_server.py: parse the XML, answer), plain HTTP;
2. the production topology started from the shipped files of deploy/ exactly as deploy/rehearse
   starts it (nginx with TLS, two `serve --no-worker --reuse-port` hub processes, the check
   and outbound workers, beat, PostgreSQL, Redis), loaded through nginx over TLS while the
   workers check; the check queue's depth (prescriptions not checked yet) sampled every second,
   then the time until every prescription is checked;
   then a paced phase: BENCH_PACED_SECONDS (60) of an open-loop sender at BENCH_PACED_SHARE
   (0.9) of the ceiling with the checks paid (the CPU of the load and its drain: during a
   saturating load the workers fall behind, so its CPU alone undercounts), through nginx,
   where the check queue must stay level (the sustainable rate, as opposed to what a
   saturating load squeezes through); with BENCH_PROFILE set, py-spy records the check worker
   (and its pool's children) during the saturating load and the report lists where its time
   went;
3. the default single-process hub (`telepharm serve`: SQLite and its embedded worker checking
   while it takes messages), plain HTTP, then its drain likewise.
For 2 and 3: every acknowledged message stored, every prescription checked exactly once, and
where the CPU went per message (hub processes, workers, nginx, PostgreSQL's backends of this
database, Redis, the load generator): with both cores busy, the rate the machine can give is
about 2,000 ms / (CPU ms a message), which the report prints as the ceiling.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from tests.benchmarks.cpu import cpu_by_role, cpu_per_message
from tests.benchmarks.intake import CONNECTIONS, HERE, SECONDS, cli, process, token_for, wrk
from tests.faults.cluster import Records, wait_for
from tests.faults.load import Load
from tests.rehearsal.steps import Edge, _token, operators
from tests.rehearsal.topology import Topology
from tests.support.processes import free_port, wait_port

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "5000"))
ADMIN = os.environ.get("BENCH_ADMIN_DATABASE", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/12")
BUS = os.environ.get("BENCH_BUS", "redis://127.0.0.1:6379/13")
#: seconds the workers get, after the load, to check what is left
DRAIN = float(os.environ.get("BENCH_DRAIN", "900"))
CORES = os.cpu_count() or 1
PACED_SECONDS = float(os.environ.get("BENCH_PACED_SECONDS", "60"))
PACED_SHARE = float(os.environ.get("BENCH_PACED_SHARE", "0.9"))
#: a directory for py-spy's raw profile of the check worker during the saturating load
PROFILE = os.environ.get("BENCH_PROFILE", "")
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


class Depth:
    """The number of prescriptions not checked yet, sampled every second on its own thread."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(self.records.unchecked())

    def __enter__(self) -> Depth:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        third = max(len(self.samples) // 3, 1)
        return {
            "max": max(self.samples),
            "at_end_of_load": self.samples[-1],
            # a queue that keeps up stays level; one that falls behind grows all along
            "first_third_mean": round(statistics.mean(self.samples[:third])),
            "last_third_mean": round(statistics.mean(self.samples[-third:])),
        }


def after_the_load(records: Records, load: dict[str, Any], stored: int) -> dict[str, Any]:
    """Drain time, and whether every acknowledged message was stored and checked once."""
    stopped = time.monotonic()
    drained = wait_for(lambda: records.unchecked() == 0, DRAIN, every=1)
    checks = records.checks()
    return {
        "drain_s": round(time.monotonic() - stopped, 1) if drained else None,
        "acknowledged": load["total"] - load["non2xx"],
        "stored": stored,
        "prescriptions": len(checks),
        "checked_once": sum(1 for _, _, done in checks if done == 1),
        "checked_more_than_once": sum(1 for _, _, done in checks if done > 1),
    }


def spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording process ``pid`` and its children (Celery's pool) for ``seconds``, in
    collapsed-stack form; idle samples left out, so the shares are of CPU spent."""
    return subprocess.Popen(
        [PY_SPY, "record", "--subprocesses", "-r", "200", "-d", str(int(seconds)),
         "-f", "raw", "-o", str(out), "-p", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _frame(frame: str) -> str:
    """``function (path/file.py:line)`` as ``function (path/file.py)``: a function, whatever
    line."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rstrip(')').split(':')[0]})"


#: the project's own code, for the inclusive shares (the frames above it are Celery's start-up)
OURS = ("server/", "eprescribe/", "signaling/")


def profile_summary(raw: Path, top: int = 25) -> dict[str, Any]:
    """Where the samples went: by the project's functions including their callees (a share of
    all samples, each function counted once a stack), and by the leaf function (self time,
    whatever its library: waiting on PostgreSQL's socket shows as the driver's wait)."""
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in {f for f in frames if f.partition(" (")[2].startswith(OURS)}:
            inclusive[frame] = inclusive.get(frame, 0) + count
        if frames:
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + count

    def shares(counts: dict[str, int]) -> list[str]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [f"{100 * n / max(total, 1):5.1f} % {name}" for name, n in ranked]

    return {"samples": total, "inclusive": shares(inclusive), "self": shares(leaf)}


def paced(edge: Edge, token: str, records: Records, rate: float) -> dict[str, Any]:
    """An open-loop sender at ``rate`` through nginx: does the check queue stay level?"""
    load = Load(edge.base, token, rate, patients=PATIENTS, tls=edge.ssl_context())
    with Depth(records) as depth:
        load.start()
        time.sleep(PACED_SECONDS)
        load.stop()
    stopped = time.monotonic()
    drained = wait_for(lambda: records.unchecked() == 0, DRAIN, every=1)
    answers = load.answers()
    return {
        "offered_per_s": round(rate, 1),
        "sent": len(load.sent),
        "answers": answers,
        "acknowledged_share": round(answers.get("000", 0) / max(len(load.sent), 1), 4),
        "latency_ms": {f"p{p}": load.latency_ms(p) for p in (50, 95, 99)},
        "queue_depth": depth.summary(),
        "drain_s": round(time.monotonic() - stopped, 1) if drained else None,
    }


def ceiling(cpu_ms: dict[str, float]) -> float:
    return round(CORES * 1000 / cpu_ms["all"], 1) if cpu_ms.get("all") else 0.0


def baseline(work: Path, template: Path) -> dict[str, Any]:
    port = free_port()
    with process(
        [sys.executable, str(HERE / "baseline_server.py"), str(port)],
        dict(os.environ),
        work / "baseline.log",
    ) as bare:
        wait_port(port)
        before = cpu_by_role({"server": bare.pid}, "-")
        load = wrk(f"http://127.0.0.1:{port}", template, "", "base", None, PATIENTS)
        spent = cpu_per_message(before, cpu_by_role({"server": bare.pid}, "-"), load["total"])
    return {**load, "cpu_ms_per_message": spent}


def production(work: Path, template: Path) -> dict[str, Any]:
    top = Topology(work / "topology", ADMIN, BROKER, BUS)
    top.work.mkdir()
    try:
        top.install()
        top.flush_redis()
        top.create_database()
        top.cli("migrate")
        top.start_all()
        edge = Edge(top)
        token = _token(edge, operators(edge).ehr, "script:send")
        roles: dict[str, list[int]] = {}
        for started in top.started:
            roles.setdefault(started.name.split("@")[0], []).append(started.process.pid)
        records = Records(f"postgresql+asyncpg://postgres@127.0.0.1/{top.database}")
        try:
            roots: dict[str, int | list[int]] = dict(roles.items())
            checks = next(s for s in top.started if s.name == "worker@checks").process.pid
            recorder = spy(checks, SECONDS, work / "checks.raw") if PROFILE else None
            before = cpu_by_role(roots, top.database)
            with Depth(records) as depth:
                load = wrk(edge.base, template, token, f"prod{int(time.time())}", None, PATIENTS)
            at_end = cpu_by_role(roots, top.database)
            stored = len(records.stored())
            outcome = after_the_load(records, load, stored)
            drained = cpu_by_role(roots, top.database)
            # the sustainable rate pays for the checks too: the CPU of the load and its drain
            steady = paced(edge, token, records, PACED_SHARE * ceiling(
                cpu_per_message(before, drained, load["total"])
            ))  # fmt: skip
        finally:
            records.close()
    finally:
        top.stop_all()
        top.drop_database()
        top.flush_redis()
    intake_cpu = cpu_per_message(before, at_end, load["total"])
    profiled: dict[str, Any] = {}
    if recorder is not None:
        recorder.wait(60)
        kept = Path(PROFILE) / "checks-worker.raw"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "checks.raw", kept)
        profiled = {"check_worker_profile": {"raw": str(kept), **profile_summary(kept)}}
    return {
        **load,
        "hub_processes": len(roles.get("hub", [])),
        "workers": len(roles.get("worker", [])),
        "queue_depth": depth.summary(),
        **outcome,
        "cpu_ms_per_message_during_load": intake_cpu,
        "cpu_ms_per_message_load_and_drain": cpu_per_message(before, drained, load["total"]),
        "ceiling_per_s_during_load": ceiling(intake_cpu),
        "ceiling_per_s_checks_paid": ceiling(cpu_per_message(before, drained, load["total"])),
        "paced": steady,
        **profiled,
    }


def single_process(work: Path, template: Path) -> dict[str, Any]:
    """`telepharm serve` as `make run` starts it: SQLite, the embedded worker."""
    home = work / "single"
    home.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(TELEPHARM_DATA_DIR=str(home / "var"), TELEPHARM_ISSUER=base)
    cli(env, "migrate")
    cli(env, "pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "Bench")
    sender = json.loads(cli(env, "client", "add", "--name", "bench", "--scope", "script:send"))
    records = Records(f"sqlite+aiosqlite:///{home / 'var' / 'hub.sqlite3'}")
    hub_cmd = [str(Path(sys.executable).parent / "telepharm"), "serve", "--port", str(port)]
    try:
        with process(hub_cmd, env, home / "hub.log") as hub:
            wait_port(port, 60)
            token = token_for(base, sender)
            before = cpu_by_role({"hub": hub.pid}, "-")
            with Depth(records) as depth:
                load = wrk(base, template, token, f"one{int(time.time())}", None, PATIENTS)
            at_end = cpu_by_role({"hub": hub.pid}, "-")
            stored = len(records.stored())
            outcome = after_the_load(records, load, stored)
    finally:
        records.close()
    intake_cpu = cpu_per_message(before, at_end, load["total"])
    return {
        **load,
        "queue_depth": depth.summary(),
        **outcome,
        "cpu_ms_per_message_during_load": intake_cpu,
        "ceiling_per_s_during_load": ceiling(intake_cpu),
    }


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-production-"))
    template = work / "newrx.xml"
    template.write_bytes(resources.files("server").joinpath("samples/newrx.xml").read_bytes())
    results: dict[str, Any] = {
        "seconds": SECONDS,
        "connections": CONNECTIONS,
        "patients": PATIENTS,
        "cores": CORES,
    }
    results["baseline"] = baseline(work, template)
    results["production"] = production(work, template)
    results["single_process"] = single_process(work, template)
    bare = results["baseline"]["rate"]
    for phase in ("production", "single_process"):
        results[phase]["rate_over_baseline"] = round(results[phase]["rate"] / bare, 3)
    print(json.dumps(results, indent=2))
    problems = [
        f"{phase}: {what}"
        for phase in ("production", "single_process")
        for what, bad in (
            ("not drained", results[phase]["drain_s"] is None),
            ("stored != acknowledged", results[phase]["stored"] < results[phase]["acknowledged"]),
            ("checked more than once", results[phase]["checked_more_than_once"] > 0),
        )
        if bad
    ]
    if results["production"]["paced"]["drain_s"] is None:
        problems.append("production: the paced phase's queue did not drain")
    if problems:
        print("problems: " + "; ".join(problems), file=sys.stderr)
        print(f"logs kept in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
