"""Outbound delivery through the outbox, and the intake beside it (issue 15).

`python -m tests.benchmarks.outbound` (PostgreSQL and Redis on 127.0.0.1, `wrk`). On a fresh
database:

- a **receiver**: a small aiohttp server in its own process, the prescriber system's
  registered endpoint (`telepharm client add --endpoint`), answering each message Status 000
  (relating to its MessageID) and noting each MessageID with the time it arrived;
- a **hub** (`serve --no-worker`) and a **worker** (`telepharm worker`, concurrency 2). The
  hub's own broker is a Redis database no worker reads (BENCH_CHECK_BROKER), so the checks of
  the intake phases' NewRx do not queue in front of the deliveries (production runs a worker
  for `telepharm.outbound`, docs/outbound.md "Limits"); the worker reads BENCH_BROKER, where
  the deliveries are published;
- **preparation**: RATE x SECONDS x (1 + ROUNDS) NewRx from the prescriber through the real
  intake, checked here on a `Checker` built as a worker builds it, each claimed by a
  pharmacist (`PrescriptionStore.act`, as the API's claim handler calls it);
- **the outbound load**: open loop at BENCH_RATE (200) a second, a pharmacist's clarification
  of the next prescription, through `PrescriptionStore.act` exactly as `POST
  /api/v1/prescriptions/{id}/clarify` runs it (the transition and its RxChangeRequest in one
  unit of work), published after the commit by the hub's own publisher (`CheckQueue`, one
  message a task). It runs in this process, not through the hub's API: the API's cost is the
  pharmacists', not the outbox's, and would otherwise be counted against the intake;
- **latency**: to the receiver's arrival time (same clock) from the commit of the change
  (the target's measure: when the store's `act` returned, after its commit and the publish),
  and, beside it, from the outbound row's `created_at` (stamped in the unit of work, so the
  wait for the audit chain's head and the commit are counted too);
- **phases**, BENCH_SECONDS (10) each: outbound alone; then ROUNDS (2) times intake alone
  (wrk, as intake.py), intake with the outbound load, and intake with **the deliveries
  alone**: the clarifications of that phase written just before it with their messages held
  back, then published at BENCH_RATE during it (as the hub's publisher does after a commit),
  so the outbox delivers 200 a second beside the intake without this process's pharmacists
  taking a core of the machine's two (latency from the publish), then the **paced intake**
  (BENCH_INTAKE_RATE, 200 NewRx a second, open loop, below what saturates the hub) alone and
  beside the deliveries, its p95 compared. Interleaved so that the machine's noise falls on
  all. After each outbound phase the deliveries drain before the next. BENCH_PHASES:
  "deliveries" (the deliveries alone and the CPU each process spends a message) or "paced"
  (those, then only the paced intake alone and beside the deliveries, by round).

Checked: every message written reached the receiver, none twice (counted by MessageID at the
receiver), every one ``delivered``. Targets: p95 commit to receipt under 1 s at 200/s; intake
with the outbox busy at least 90 % of intake alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.benchmarks import intake
from tests.benchmarks.cpu import cpu_by_role, cpu_per_message
from tests.benchmarks.intake import (
    BIN,
    NCPDPID,
    cli,
    free_port,
    prepare_hub,
    process,
    psql,
    token_for,
    wait_port,
)

RATE = int(os.environ.get("BENCH_RATE", "200"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/14")
CHECK_BROKER = os.environ.get("BENCH_CHECK_BROKER", "redis://127.0.0.1:6379/15")
#: how long the deliveries of a phase may take to drain after its last change
DRAIN = float(os.environ.get("BENCH_DRAIN", "120"))
#: clarifications in flight at most (0: open loop, as the figures in README.md were taken);
#: each holds the audit chain's head from its append to its commit, so a flood of them in
#: one event loop makes a convoy of every audited writer (README.md)
IN_FLIGHT = int(os.environ.get("BENCH_IN_FLIGHT", "0"))
#: clarifications before the first phase (not measured)
WARM_UP = int(os.environ.get("BENCH_WARM_UP", "100"))
PASSWORD = "a long and private passphrase for load"
QUESTION = "Please confirm the strength: 10 mg or 20 mg?"
FINISHED_SQL = "SELECT count(*) FROM outbound_messages WHERE state IN ('delivered', 'dead')"
PHARMACY_SQL = f"SELECT id FROM pharmacies WHERE ncpdpid = '{NCPDPID}'"  # noqa: S608 (a constant)
#: "all" (the phases above), "deliveries" (warm-up and the deliveries with nothing beside
#: them, to measure what a delivery costs: CPU a message of each process involved) or
#: "paced" (those, then ROUNDS times the paced intake alone and beside the deliveries)
PHASES = os.environ.get("BENCH_PHASES", "all")
#: the paced intake's offered rate (NewRx a second, open loop), below what the hub saturates at
INTAKE_RATE = int(os.environ.get("BENCH_INTAKE_RATE", "200"))
TARGET_P95 = 1.0
TARGET_RATIO = 0.9


# -- the receiver (its own process) ---------------------------------------------------------


def receiver(port: int, out: str) -> None:
    """Answer each SCRIPT message with a Status 000 relating to it; note its MessageID and
    arrival time; write them to ``out`` when stopped (SIGTERM)."""
    from eprescribe.ncpdp import SenderSoftware, build_status, parse_message, reply_context

    software = SenderSoftware("Bench", "Bench EHR", "1.0")
    seen: list[tuple[str, float]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        header = parse_message(body).header
        seen.append((header.message_id, arrived))
        reply = build_status(
            reply_context(header),
            message_id=uuid.uuid4().hex,
            sent_time=dt.datetime.now(dt.UTC),
            software=software,
        )
        return web.Response(body=reply, content_type="application/xml")

    app = web.Application()
    app.router.add_post("/script", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    Path(out).write_text("".join(f"{m}\t{t!r}\n" for m, t in seen))


# -- the outbound load ----------------------------------------------------------------------


class Pharmacists:
    """The clarifications, as the API's handler runs them, in this process."""

    def __init__(self, env: dict[str, str], user_id: str, pharmacy_id: uuid.UUID) -> None:
        from eprescribe import prescriptions as rules
        from server import audit
        from server.db import Database
        from server.outbox import DELIVER_TASK
        from server.prescriptions.store import PrescriptionStore
        from server.settings import Settings
        from server.worker import OUTBOUND_CHUNK, OUTBOUND_LINGER, create_celery
        from server.worker.publisher import CheckQueue

        self.settings = Settings.from_env(env)
        self.db = Database(self.settings.database_url)
        # the hub's publisher of deliveries, as server.worker sets it up
        celery = create_celery(self.settings)
        self.queue = CheckQueue(celery, DELIVER_TASK, linger=OUTBOUND_LINGER, chunk=OUTBOUND_CHUNK)
        self.store = PrescriptionStore(self.db, deliver=self.queue.submit)
        #: the messages of clarifications written ahead (``hold``), published by ``release``
        self.held: list[uuid.UUID] = []
        self.holding = PrescriptionStore(self.db, deliver=lambda ids: self.held.extend(ids))
        #: when each held message was published, by outbound message row ID
        self.released: dict[str, float] = {}
        self.actor = audit.Actor("user", user_id, pharmacy_id)
        self.pharmacy_id = pharmacy_id
        self.reviewer = rules.Reviewer(user_id, False)
        self.rules = rules
        self.failed = 0
        self.failures: dict[str, int] = {}
        #: when each clarification's unit of work had committed (``act`` returned), by
        #: prescription: the start of the target's "commit to receipt"
        self.committed: dict[str, float] = {}
        self.gate = asyncio.Semaphore(IN_FLIGHT) if IN_FLIGHT else None

    async def claim(self, rx_id: uuid.UUID) -> None:
        who = self.reviewer
        await self.store.act(
            self.actor,
            self.pharmacy_id,
            rx_id,
            "claim",
            lambda rx, now: self.rules.claim(rx, who, now),
        )

    async def clarify(self, rx_id: uuid.UUID) -> None:
        if self.gate is None:
            return await self._clarify(rx_id)
        async with self.gate:
            return await self._clarify(rx_id)

    async def _clarify(self, rx_id: uuid.UUID, store: Any = None) -> None:
        who = self.reviewer
        try:
            await (store or self.store).act(
                self.actor,
                self.pharmacy_id,
                rx_id,
                "clarify",
                lambda rx, now: self.rules.clarify(rx, who, "strength", QUESTION, now),
            )
            self.committed[str(rx_id)] = time.time()
        except Exception as exc:  # counted: a change that did not commit writes no message
            self.failed += 1
            why = f"{type(exc).__name__}: {getattr(exc, 'code', '')}"
            self.failures[why] = self.failures.get(why, 0) + 1

    async def hold(self, ids: list[uuid.UUID]) -> None:
        """Clarify ``ids`` without publishing their messages (the outbox's work kept for
        :meth:`release`)."""
        await bounded(8, [self._clarify(rx_id, self.holding) for rx_id in ids])

    async def release(self, rate: int) -> float:
        """Publish the held messages open loop at ``rate`` a second, as the hub's publisher
        does after a commit; the seconds it took."""
        held, self.held = self.held, []
        started = time.perf_counter()
        for i, message in enumerate(held):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            self.queue.submit([message])
            self.released[str(message)] = time.time()
        return time.perf_counter() - started

    async def paced(self, ids: list[uuid.UUID], rate: int) -> float:
        """Clarify ``ids`` open loop at ``rate`` a second; the seconds it took."""
        started = time.perf_counter()
        tasks = []
        for i, rx_id in enumerate(ids):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(self.clarify(rx_id)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - started

    async def close(self) -> None:
        await self.queue.close()
        await self.db.close()


async def bounded(limit: int, work: list[Any]) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in work))


# -- preparation ----------------------------------------------------------------------------


async def post_newrx(base: str, token: str, count: int) -> None:
    """``count`` NewRx from the prescriber, each its own patient (a pharmacy block with a
    phone number, which an RxChangeRequest must carry)."""
    from tests.benchmarks.queue import letters
    from tests.support.script_samples import newrx_xml

    today = dt.datetime.now(dt.UTC).date().isoformat()
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            body = newrx_xml(
                message_id=f"out-{i}-{uuid.uuid4().hex[:12]}",
                sent_time=f"{today}T00:00:00Z",
                written_date=today,
                patient_last=f"OUT{letters(i)}",
                drug_description="lisinopril 10 MG Oral Tablet",
            )
            async with session.post(f"{base}/ncpdp/script", data=body, headers=headers) as r:
                reply = await r.read()
                assert b"<Status>" in reply, reply

        await bounded(16, [one(i) for i in range(count)])


def check_all(env: dict[str, str]) -> list[uuid.UUID]:
    """Check every received prescription (a worker's Checker, in chunks of 32); their IDs,
    oldest first."""
    from server.settings import Settings
    from server.worker.checking import Checker

    ids = [uuid.UUID(x) for x in psql("SELECT id FROM prescriptions ORDER BY received_at, id")]
    checker = Checker.from_settings(Settings.from_env(env))
    try:
        for start in range(0, len(ids), 32):
            checker.check_many(ids[start : start + 32])
    finally:
        checker.close()
    return [
        uuid.UUID(x)
        for x in psql(
            "SELECT id FROM prescriptions WHERE state = 'awaiting_review' ORDER BY received_at, id"
        )
    ]


def add_pharmacist(env: dict[str, str]) -> str:
    done = cli_stdin(
        env,
        [
            *["user", "add", "--pharmacy", NCPDPID, "--username", "bench"],
            *["--role", "pharmacist", "--password-stdin"],
        ],
        PASSWORD,
    )
    assert "otpauth://" in done
    return psql("SELECT id FROM users WHERE username = 'bench'")[0]


def cli_stdin(env: dict[str, str], args: list[str], stdin: str) -> str:
    return subprocess.run(
        [str(BIN / "telepharm"), *args],
        env=env,
        input=stdin + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# -- the run --------------------------------------------------------------------------------


def quantiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100)
    return {
        "n": len(values),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def drain() -> float:
    """Wait until every message written is finished (delivered or dead); the seconds it took.
    Counted in the database: a clarification that failed wrote none. Blocking: run it in a
    thread, so that the publisher's last batch (lingering on the event loop) goes out."""
    started = time.monotonic()
    while time.monotonic() - started < DRAIN:
        finished, written = psql(
            "SELECT count(*) FILTER (WHERE state IN ('delivered','dead')), count(*)"
            " FROM outbound_messages"
        )[0].split("|")
        if int(finished) >= int(written):
            break
        time.sleep(0.25)
    return round(time.monotonic() - started, 2)


async def run(
    env: dict[str, str],
    base: str,
    roots: dict[str, int],
    sender: str,
    user_id: str,
    template: Path,
) -> dict[str, Any]:
    hub_pid = roots["hub"]
    pharmacy_id = uuid.UUID(psql(PHARMACY_SQL)[0])
    per_phase = RATE * SECONDS
    # the deliveries alone, then by round: with wrk, intake + outbound and + deliveries;
    # paced, intake + deliveries
    phases = {"deliveries": 1, "paced": 1 + ROUNDS}.get(PHASES, 2 + 3 * ROUNDS)
    total = WARM_UP + per_phase * phases
    await post_newrx(base, sender, total)
    ready = await asyncio.to_thread(check_all, env)
    assert len(ready) >= total, f"{len(ready)} of {total} awaiting review"
    pharmacists = Pharmacists(env, user_id, pharmacy_id)
    results: dict[str, Any] = {"phases": []}
    try:
        await bounded(8, [pharmacists.claim(rx_id) for rx_id in ready[:total]])
        warm, rest = ready[:WARM_UP], ready[WARM_UP:]
        batches = [rest[i * per_phase : (i + 1) * per_phase] for i in range(phases)]
        wrk_token = token_for(base, json.loads(env["BENCH_INTAKE_CREDENTIALS"]))
        newrx = await asyncio.to_thread(template.read_bytes)

        async def outbound_phase(name: str, ids: list[uuid.UUID], with_intake: bool) -> None:
            mark = time.time()
            jobs: list[Any] = [pharmacists.paced(ids, RATE)]
            if with_intake:
                jobs.append(
                    asyncio.to_thread(
                        intake.wrk,
                        base,
                        template,
                        wrk_token,
                        f"b{len(results['phases'])}-{int(mark)}",
                        hub_pid,
                    )
                )
            done = await asyncio.gather(*jobs)
            phase: dict[str, Any] = {
                "phase": name,
                "prescriptions": [str(i) for i in ids],
                "generated_in_s": round(done[0], 2),
                "drain_s": await asyncio.to_thread(drain),
            }
            if with_intake:
                phase["intake"] = done[1]
            results["phases"].append(phase)

        async def deliveries_phase(name: str, ids: list[uuid.UUID]) -> None:
            """The intake while the worker delivers messages written before the phase,
            published at RATE: the outbox busy, without the pharmacists' writing."""
            await pharmacists.hold(ids)
            mark = time.time()
            done = await asyncio.gather(
                pharmacists.release(RATE),
                asyncio.to_thread(
                    intake.wrk,
                    base,
                    template,
                    wrk_token,
                    f"d{len(results['phases'])}-{int(mark)}",
                    hub_pid,
                ),
            )
            results["phases"].append(
                {
                    "phase": name,
                    "prescriptions": [str(i) for i in ids],
                    "published_in_s": round(done[0], 2),
                    "drain_s": await asyncio.to_thread(drain),
                    "intake": done[1],
                }
            )

        async def cpu_phase(name: str, ids: list[uuid.UUID]) -> None:
            """The deliveries alone (written before, published at RATE), and the CPU each
            process involved spent a message, from the first publish to the drain."""
            await pharmacists.hold(ids)
            before = cpu_by_role(roots, intake.DATABASE)
            published = await pharmacists.release(RATE)
            drained = await asyncio.to_thread(drain)
            results["phases"].append(
                {
                    "phase": name,
                    "prescriptions": [str(i) for i in ids],
                    "published_in_s": round(published, 2),
                    "drain_s": drained,
                    "cpu_ms_per_message": cpu_per_message(
                        before, cpu_by_role(roots, intake.DATABASE), len(ids)
                    ),
                }
            )

        async def paced_phase(name: str, ids: list[uuid.UUID]) -> None:
            """The intake offered INTAKE_RATE a second (open loop, its latency from when each
            was due), alone (``ids`` empty) or while the worker delivers ``ids``, written
            before the phase and published at RATE."""
            url = base + "/ncpdp/script"
            paced = intake.paced(url, newrx, wrk_token, INTAKE_RATE, SECONDS)
            if not ids:
                results["phases"].append({"phase": name, "paced": await paced})
                return
            await pharmacists.hold(ids)
            done = await asyncio.gather(pharmacists.release(RATE), paced)
            results["phases"].append(
                {
                    "phase": name,
                    "prescriptions": [str(i) for i in ids],
                    "published_in_s": round(done[0], 2),
                    "drain_s": await asyncio.to_thread(drain),
                    "paced": done[1],
                }
            )

        # a hub that has been running: connections open, the worker's deliverer made
        await outbound_phase("warm-up", warm, False)
        await cpu_phase("deliveries alone", batches[-1])
        if PHASES == "paced":
            for r in range(ROUNDS):
                await paced_phase(f"paced intake alone {r + 1}", [])
                await paced_phase(f"paced intake + deliveries {r + 1}", batches[r])
        rounds = ROUNDS if PHASES == "all" else 0
        if rounds:
            await outbound_phase("outbound alone", batches[0], False)
        for r in range(rounds):
            alone = await asyncio.to_thread(
                intake.wrk, base, template, wrk_token, f"a{r}-{int(time.time())}", hub_pid
            )
            results["phases"].append({"phase": f"intake alone {r + 1}", "intake": alone})
            await outbound_phase(f"intake + outbound {r + 1}", batches[1 + r], True)
            await deliveries_phase(f"intake + deliveries {r + 1}", batches[1 + ROUNDS + r])
            await paced_phase(f"paced intake alone {r + 1}", [])
            await paced_phase(f"paced intake + deliveries {r + 1}", batches[1 + 2 * ROUNDS + r])
        results["clarify_failed"] = pharmacists.failed
        results["clarify_failures"] = pharmacists.failures
        results["committed"] = pharmacists.committed
        results["released"] = pharmacists.released
    finally:
        await pharmacists.close()
    return results


def measure(results: dict[str, Any], received: Path) -> None:
    arrivals: dict[str, list[float]] = {}
    for line in received.read_text().splitlines():
        message_id, at = line.split("\t")
        arrivals.setdefault(message_id, []).append(float(at))
    rows = [
        line.split("|")
        for line in psql(
            "SELECT message_id, extract(epoch FROM created_at), state, prescription_id, id"
            " FROM outbound_messages ORDER BY created_at"
        )
    ]
    results["written"] = len(rows)
    results["states"] = dict(Counter(row[2] for row in rows))
    results["lost"] = sum(1 for row in rows if row[0] not in arrivals)
    results["received_twice"] = sum(1 for times in arrivals.values() if len(times) > 1)
    results["received_unknown"] = len(set(arrivals) - {row[0] for row in rows})
    latency = {row[3]: min(arrivals[row[0]]) - float(row[1]) for row in rows if row[0] in arrivals}
    committed = results.pop("committed")
    released = results.pop("released")
    after_release = {
        row[3]: min(arrivals[row[0]]) - released[row[4]]
        for row in rows
        if row[0] in arrivals and row[4] in released
    }
    after_commit = {
        row[3]: min(arrivals[row[0]]) - committed[row[3]]
        for row in rows
        if row[0] in arrivals and row[3] in committed
    }
    results["latency"] = {}
    results["latency_from_commit"] = {}
    for phase in results["phases"]:
        ids = phase.pop("prescriptions", None)
        values = [latency[i] for i in ids or () if i in latency]
        if values and phase["phase"] != "warm-up":
            results["latency"][phase["phase"]] = quantiles(values)
            done = [after_commit[i] for i in ids or () if i in after_commit]
            if done:
                results["latency_from_commit"][phase["phase"]] = quantiles(done)
            published = [after_release[i] for i in ids or () if i in after_release]
            if published:
                results.setdefault("latency_from_publish", {})[phase["phase"]] = quantiles(
                    published
                )
    paced = {p["phase"]: p["paced"]["p95_ms"] for p in results["phases"] if "paced" in p}
    results["paced_p95_busy_over_alone"] = [
        round(paced[f"paced intake + deliveries {r}"] / paced[f"paced intake alone {r}"], 2)
        for r in range(1, ROUNDS + 1)
        if f"paced intake + deliveries {r}" in paced
    ]
    alone = [
        p["intake"]["rate"] for p in results["phases"] if p["phase"].startswith("intake alone")
    ]
    if not alone:
        return
    for kind in ("outbound", "deliveries"):
        busy = [
            p["intake"]["rate"]
            for p in results["phases"]
            if p["phase"].startswith(f"intake + {kind}")
        ]
        results[f"intake_{kind}_over_alone"] = [
            round(b / a, 3) for a, b in zip(alone, busy, strict=True)
        ]
        results[f"intake_{kind}_over_alone_all"] = round(sum(busy) / sum(alone), 3)


def report(r: dict[str, Any]) -> None:
    print(f"\n{r['written']} messages written, states {r['states']}")
    print(
        f"lost {r['lost']}, received twice {r['received_twice']},"
        f" unknown {r['received_unknown']}, clarifications failed {r['clarify_failed']}"
    )
    for name, q in r["latency"].items():
        print(
            f"written -> receiver, {name}: p50 {q['p50_ms']} ms  p95 {q['p95_ms']} ms"
            f"  p99 {q['p99_ms']} ms  max {q['max_ms']} ms  (n {q['n']})"
        )
    for name, q in r["latency_from_commit"].items():
        print(
            f"commit -> receiver, {name}: p50 {q['p50_ms']} ms  p95 {q['p95_ms']} ms"
            f"  p99 {q['p99_ms']} ms  max {q['max_ms']} ms  (n {q['n']}; target p95 < 1000 ms)"
        )
    for p in r["phases"]:
        if "intake" in p:
            i = p["intake"]
            print(
                f"{p['phase']}: intake {i['rate']:.0f}/s p50 {i['p50']} p99 {i['p99']}"
                f" CPU {i['cpu_ms_per_request']} ms/request"
            )
    for name, q in r.get("latency_from_publish", {}).items():
        print(
            f"publish -> receiver, {name}: p50 {q['p50_ms']} ms  p95 {q['p95_ms']} ms"
            f"  p99 {q['p99_ms']} ms  max {q['max_ms']} ms  (n {q['n']}; target p95 < 1000 ms)"
        )
    for p in r["phases"]:
        if "cpu_ms_per_message" in p:
            print(f"{p['phase']}: CPU ms a message {p['cpu_ms_per_message']}")
    for p in r["phases"]:
        if "paced" in p:
            i = p["paced"]
            print(
                f"{p['phase']}: {i['sent']} NewRx at {i['rate']}/s, p50 {i['p50_ms']} ms"
                f"  p95 {i['p95_ms']} ms  p99 {i['p99_ms']} ms  errors {i['errors']}"
            )
    if "paced_p95_busy_over_alone" in r:
        print(
            f"paced intake p95 beside the deliveries / alone: {r['paced_p95_busy_over_alone']}"
            " by round"
        )
    if "intake_outbound_over_alone" not in r:
        return
    for kind, what in (
        ("outbound", "pharmacists writing and the outbox delivering"),
        ("deliveries", "the outbox delivering what was written before"),
    ):
        print(
            f"intake with {what} / alone: {r[f'intake_{kind}_over_alone']} by round,"
            f" {r[f'intake_{kind}_over_alone_all']:.1%} overall (target >= 90%)"
        )


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-outbound-"))
    template = work / "newrx.xml"
    template.write_bytes(resources.files("server").joinpath("samples/newrx.xml").read_bytes())
    intake.SECONDS = SECONDS  # wrk's phases as long as the outbound ones
    port, receiver_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    received = work / "received.tsv"
    env, credentials = prepare_hub(work, base, BROKER, TELEPHARM_LOG_LEVEL="WARNING")
    if CHECK_BROKER.startswith("redis://"):  # (memory:// is the hub's own: nothing to flush)
        subprocess.run(
            ["redis-cli", "-n", CHECK_BROKER.rsplit("/", 1)[1], "flushdb"],
            check=True,
            capture_output=True,
        )
    prescriber = json.loads(
        cli(
            env,
            *["client", "add", "--name", "prescriber", "--scope", "script:send"],
            *["--endpoint", f"http://127.0.0.1:{receiver_port}/script"],
        )
    )
    user_id = add_pharmacist(env)
    env["BENCH_INTAKE_CREDENTIALS"] = json.dumps(credentials)
    # the intake phases' NewRx stay received (nobody checks them): the hub's sweep must not
    # spend more on them in each later phase than in the one before
    hub_env = dict(env, TELEPHARM_BROKER_URL=CHECK_BROKER, TELEPHARM_STUCK_AFTER="3600")
    receiver_cmd = [sys.executable, "-m", "tests.benchmarks.outbound", "receiver"]
    with (
        process(
            [*receiver_cmd, str(receiver_port), str(received)], env, work / "receiver.log"
        ) as rcv,
        process(
            [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"],
            hub_env,
            work / "hub.log",
        ) as hub,
        process([str(BIN / "telepharm"), "worker"], env, work / "worker.log") as worker,
    ):
        wait_port(port)
        wait_port(receiver_port)
        time.sleep(3)  # the worker connects to the broker
        sender = token_for(base, prescriber)
        roots = {"hub": hub.pid, "worker": worker.pid, "receiver": rcv.pid}
        results = asyncio.run(run(env, base, roots, sender, user_id, template))
        rcv.send_signal(signal.SIGTERM)
        rcv.wait(15)
    measure(results, received)
    results["rate"], results["seconds"], results["rounds"] = RATE, SECONDS, ROUNDS
    print(json.dumps(results, indent=2))
    report(results)
    shutil.rmtree(work / "var", ignore_errors=True)
    print(f"logs: {work}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["receiver"]:
        receiver(int(sys.argv[2]), sys.argv[3])
    else:
        main()
