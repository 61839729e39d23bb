"""A pharmacy's ledger with 1,000,000 entries: a patient's balance, the day's reconciliation,
the receivables' ageing (issue 18).

`python -m tests.benchmarks.ledger` (PostgreSQL on 127.0.0.1, as intake.py; BENCH_DATABASE,
dropped and made again; a few minutes). A hub process (``serve --no-worker``) on a fresh
migrated database with two pharmacies and a pharmacist signed in through the browser flow;
then, inserted directly with COPY (synthetic rows only):

- pharmacy A: BENCH_PATIENTS (20,000) patients and BENCH_ENTRIES (1,000,000) ledger entries,
  skewed (most patients 5-60 lines, one in eleven 100-200, one in a hundred 300-900), dated over
  two years up to now, kinds mixed: charges, payments (a provider charge each, a method),
  refunds of earlier payments (a provider refund each), write-offs, signed adjustments; the
  reconciled day (yesterday, UTC) holds BENCH_DAY_LINES (3,000) more payments and refunds;
- pharmacy B: 2,000 patients and 50,000 entries the same way (its payments share the provider
  account, so they are in the provider's list and must be left out of A's report).

The provider is a stand-in process (an aiohttp server speaking Stripe's
``GET /v1/balance_transactions``: newest first, ``limit``, ``starting_after``, ``has_more``;
and the charge and refund lookups the hub makes for a transaction no ledger names), read by the
hub's own ``StripeProvider`` through TELEPHARM_STRIPE_API_BASE. It holds a balance transaction
for every payment and refund of either pharmacy from an hour before the day to now, less a few
(missing at the provider), a few with another amount (mismatched) and a few no ledger names.
Seeding localstripe with thousands of charges and refunds (each a customer, an intent, a
confirmation) took too long to be worth it here.

Phases:

1. **balance**: ``GET /api/v1/patients/{id}/ledger?limit=50`` (the balance and the first page)
   by BENCH_CLIENTS (4) clients, one request after another, over random patients of A (heavy
   ones included, and a run over the heavy ones alone) for BENCH_SECONDS (20) after 3 s not
   counted; against a **bare** aiohttp handler answering one such page (``json.dumps`` each
   time) in its own process. Target: p95 under 20 ms.
2. **reconciliation**: ``GET /api/v1/payments/reconciliation?day=`` (BENCH_RECONCILE_RUNS, 3),
   and its parts timed in this process with the hub's own functions on the same database and
   stand-in: the provider's list read (``StripeProvider.movements``), the database's
   statements (the references' owners, the day's lines, the collections), the matching
   (``reconcile``).
3. **receivables**: ``GET /api/v1/payments/receivables`` (2 runs).
0. first, the same balance load and receivables with 1,000 entries in all (20 patients, the
   same skew): a balance must not grow with the pharmacy's history. The 1,000,000 are copied
   in after it (the table emptied first), and stay in the database after the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import asyncpg
from aiohttp import web

from tests.benchmarks.intake import BIN, DATABASE, PG, cli, cpu_seconds, process, reset_database
from tests.support.processes import free_port, wait_port
from tests.support.signin import sign_in

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "20000"))
ENTRIES = int(os.environ.get("BENCH_ENTRIES", "1000000"))
DAY_LINES = int(os.environ.get("BENCH_DAY_LINES", "3000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
RECONCILE_RUNS = int(os.environ.get("BENCH_RECONCILE_RUNS", "3"))
SMALL_ENTRIES, SMALL_PATIENTS = 1000, 20
OTHER_PATIENTS, OTHER_ENTRIES = 2000, 50000
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/15")  # nothing is published
TARGET_MS = 20.0
#: statements run after the rows are in (an index to try), ``;`` between them
DDL = os.environ.get("BENCH_DDL", "")
#: where to write a py-spy profile of the hub during the 1,000,000-entry random balance load
PROFILE = os.environ.get("BENCH_PROFILE", "")
PY_SPY = os.environ.get("BENCH_PY_SPY", "/work/main/.venv/bin/py-spy")
PASSWORD = "a long and private passphrase for load"
SCOPE = "openid rx:read"
SECRET_KEY = "sk_test_synthetic_bench"
DSN = f"postgresql://postgres@127.0.0.1/{DATABASE}"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = (NOW - dt.timedelta(days=1)).date()
DAY_START = dt.datetime.combine(DAY, dt.time(), dt.UTC)
SLACK = dt.timedelta(hours=1)


# --- the synthetic ledger ----------------------------------------------------------------------


def line_counts(rng: random.Random, patients: int, total: int) -> list[int]:
    """How many lines each patient has: skewed, summing to ``total``."""
    counts = []
    for _ in range(patients):
        roll = rng.random()
        if roll < 0.01:
            counts.append(rng.randint(300, 900))
        elif roll < 0.10:
            counts.append(rng.randint(100, 200))
        else:
            counts.append(rng.randint(5, 60))
    scale = total / sum(counts)
    counts = [max(1, int(c * scale)) for c in counts]
    short = total - sum(counts)
    for n in range(abs(short)):
        i = n % patients
        if short > 0:
            counts[i] += 1
        elif counts[i] > 1:
            counts[i] -= 1
    return counts


class Ledger:
    """Rows for COPY into ledger_entries, and the provider's side of the payments."""

    COLUMNS = (
        "id", "pharmacy_id", "patient_id", "kind", "amount", "currency", "cause_type", "cause_id",
        "provider_ref", "method", "refunds_entry_id", "description", "reason", "actor", "at",
    )  # fmt: skip

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: list[tuple[Any, ...]] = []
        #: (provider ref, kind, amount, at) of every payment and refund
        self.moves: list[tuple[str, str, int, dt.datetime]] = []
        self.serial = 0

    def patient(
        self, pharmacy: uuid.UUID, patient: uuid.UUID, count: int, day_lines: int = 0
    ) -> None:
        rng = self.rng
        span = 730 * 86400
        ats = sorted(
            NOW - dt.timedelta(seconds=rng.randint(60, span), microseconds=rng.randint(0, 999999))
            for _ in range(count - day_lines)
        )
        day = sorted(
            DAY_START + dt.timedelta(seconds=rng.randint(0, 86399), microseconds=rng.randint(0, 9))
            for _ in range(day_lines)
        )
        payments: list[tuple[uuid.UUID, int]] = []
        for at in ats:
            roll = rng.random()
            kind = (
                "charge" if roll < 0.50 else
                "payment" if roll < 0.85 else
                "refund" if roll < 0.90 else
                "write_off" if roll < 0.92 else "adjustment"
            )  # fmt: skip
            self._line(pharmacy, patient, kind, at, payments)
        for at in day:
            self._line(
                pharmacy, patient, "payment" if rng.random() < 0.9 else "refund", at, payments
            )

    def _line(
        self,
        pharmacy: uuid.UUID,
        patient: uuid.UUID,
        kind: str,
        at: dt.datetime,
        payments: list[tuple[uuid.UUID, int]],
    ) -> None:
        rng = self.rng
        self.serial += 1
        n = self.serial
        entry = uuid.uuid4()
        ref = method = refunds = reason = None
        if kind == "refund" and not payments:
            kind = "payment"
        if kind == "charge":
            amount, cause, description = rng.randint(500, 9000), ("fill", f"bench-fill-{n}"), "Fill"
        elif kind == "payment":
            amount = rng.randint(500, 9000)
            ref, method = f"ch_bench{n:09d}", rng.choice(("card_present", "online", "saved_card"))
            cause, description = ("intent", f"pi_bench{n:09d}"), "Card payment"
            payments.append((entry, amount))
        elif kind == "refund":
            refunds, paid = rng.choice(payments)
            amount = rng.randint(1, paid)
            ref, cause, description = f"re_bench{n:09d}", ("refund", f"re_bench{n:09d}"), "Refund"
        elif kind == "write_off":
            amount, cause, description = rng.randint(100, 3000), ("manual", f"w{n}"), "Write-off"
            reason = "synthetic"
        else:
            amount = rng.choice((-1, 1)) * rng.randint(50, 2000)
            cause, description, reason = ("manual", f"a{n}"), "Adjustment", "synthetic"
        self.rows.append(
            (entry, pharmacy, patient, kind, amount, "usd", *cause, ref, method, refunds,
             description, reason, "user:bench", at)
        )  # fmt: skip
        if ref is not None:
            self.moves.append((ref, kind, amount, at))


def provider_transactions(
    moves: list[tuple[str, str, int, dt.datetime]], rng: random.Random
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The provider's balance transactions from an hour before the day to now, newest first,
    with a few discrepancies: the counts of each kind made."""
    since = DAY_START - SLACK
    mine = [m for m in moves if m[3] >= since]
    day = [i for i, m in enumerate(mine) if DAY_START <= m[3] < DAY_START + dt.timedelta(days=1)]
    dropped = set(rng.sample(day, 5))
    changed = set(rng.sample([i for i in day if i not in dropped], 3))
    txns = []
    for i, (ref, kind, amount, at) in enumerate(mine):
        if i in dropped:
            continue
        if i in changed:
            amount += 1
        txns.append(_txn(ref, kind, amount, at, i))
    for k in range(4):  # at the provider, in no ledger
        at = DAY_START + dt.timedelta(hours=3 + k)
        txns.append(_txn(f"ch_stray{k:04d}", "payment", 1234, at, len(mine) + k))
    txns.sort(key=lambda t: (t["created"], t["id"]), reverse=True)
    return txns, {"dropped": 5, "changed": 3, "stray": 4}


def _txn(ref: str, kind: str, amount: int, at: dt.datetime, n: int) -> dict[str, Any]:
    return {
        "id": f"txn_bench{n:09d}",
        "object": "balance_transaction",
        "amount": amount if kind == "payment" else -amount,
        "currency": "usd",
        "created": int(at.timestamp()),
        "type": "charge" if kind == "payment" else "refund",
        "source": ref,
        "status": "available",
    }


# --- the provider's stand-in and the bare handler ---------------------------------------------


def serve_provider(port: int, txns_file: str) -> None:
    """Stripe's balance transaction list (and the lookups of a charge or refund), from a file."""
    from tests.benchmarks.baseline_server import serve as run

    txns = json.loads(Path(txns_file).read_text())
    where = {t["id"]: i for i, t in enumerate(txns)}
    served = {"pages": 0, "seconds": 0.0}

    async def listing(request: web.Request) -> web.Response:
        started = time.perf_counter()
        limit = min(100, int(request.query.get("limit", "10")))
        after = request.query.get("starting_after")
        first = where[after] + 1 if after else 0
        page = txns[first : first + limit]
        body = {
            "object": "list",
            "url": "/v1/balance_transactions",
            "has_more": first + limit < len(txns),
            "data": page,
        }
        response = web.json_response(body)
        served["pages"] += 1
        served["seconds"] += time.perf_counter() - started
        return response

    async def charge(request: web.Request) -> web.Response:
        found = request.match_info["id"]
        return web.json_response({"id": found, "object": "charge", "payment_intent": None})

    async def refund(request: web.Request) -> web.Response:
        found = request.match_info["id"]
        return web.json_response({"id": found, "object": "refund", "charge": None})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(served)

    app = web.Application()
    app.router.add_get("/v1/balance_transactions", listing)
    app.router.add_get("/v1/charges/{id}", charge)
    app.router.add_get("/v1/refunds/{id}", refund)
    app.router.add_get("/_stats", stats)
    run(app, port)


def serve_bare(port: int, page_file: str) -> None:
    """One patient's ledger page as JSON, encoded for each request: the floor."""
    from tests.benchmarks.baseline_server import serve as run

    page = json.loads(Path(page_file).read_text())

    async def ledger(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(page).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/patients/{id}/ledger", ledger)
    run(app, port)


@contextmanager
def side_process(work: Path, role: str, data: Any) -> Iterator[tuple[str, int]]:
    port = free_port()
    data_file = work / f"{role}.json"
    data_file.write_text(json.dumps(data))
    args = [sys.executable, "-m", "tests.benchmarks.ledger", role, str(port), str(data_file)]
    with process(args, dict(os.environ), work / f"{role}.log") as proc:
        wait_port(port)
        yield f"http://127.0.0.1:{port}", proc.pid


# --- the hub -----------------------------------------------------------------------------------


def prepare(work: Path, base: str, provider: str) -> tuple[dict[str, str], str]:
    """A fresh database with two pharmacies and a pharmacist; the env and the console's ID."""
    reset_database()
    env = dict(
        os.environ,
        TELEPHARM_DATABASE_URL=PG + DATABASE,
        TELEPHARM_ISSUER=base,
        TELEPHARM_DATA_DIR=str(work / "var"),
        TELEPHARM_BROKER_URL=BROKER,
        TELEPHARM_LOG_LEVEL="WARNING",
        TELEPHARM_STRIPE_API_KEY=SECRET_KEY,
        TELEPHARM_STRIPE_API_BASE=provider,
    )
    cli(env, "migrate")
    cli(env, "pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "A")
    cli(env, "pharmacy", "add", "--ncpdpid", "7654321", "--npi", "1000000012", "--name", "B")
    console = cli(
        env, "client", "add", "--name", "console", "--scope", SCOPE, "--redirect-uri", f"{base}/cb"
    )
    found = re.search(r'"client_id": "([^"]+)"', console)
    assert found is not None
    return env, found.group(1)


def add_pharmacist(env: dict[str, str]) -> str:
    added = subprocess.run(
        [str(BIN / "telepharm"), "user", "add", "--pharmacy", "1234567", "--username", "pharm",
         "--role", "pharmacist", "--password-stdin"],
        env=env, input=PASSWORD + "\n", capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    uri = next(line for line in added.splitlines() if line.startswith("otpauth://"))
    return parse_qs(urlparse(uri).query)["secret"][0]


async def pharmacies() -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(DSN)
    try:
        a = await conn.fetchval("SELECT id FROM pharmacies WHERE ncpdpid = '1234567'")
        b = await conn.fetchval("SELECT id FROM pharmacies WHERE ncpdpid = '7654321'")
        return a, b
    finally:
        await conn.close()


def build(
    rng: random.Random, pharmacy: uuid.UUID, other: uuid.UUID, patients: int, entries: int
) -> tuple[Ledger, list[tuple[Any, ...]], list[uuid.UUID], list[uuid.UUID]]:
    """The rows: the ledger, the patients; A's patients and its heaviest hundredth."""
    ledger = Ledger(rng)
    people: list[tuple[Any, ...]] = []
    ours: list[uuid.UUID] = []
    day_lines = DAY_LINES if entries >= 10 * DAY_LINES else 0
    counts = line_counts(rng, patients, entries - day_lines)
    extra = [0] * patients
    for _ in range(day_lines):
        extra[rng.randrange(patients)] += 1
    for n, (count, more) in enumerate(zip(counts, extra, strict=True)):
        patient = uuid.uuid4()
        ours.append(patient)
        people.append(_person(patient, pharmacy, n))
        ledger.patient(pharmacy, patient, count + more, more)
    if entries >= 10 * DAY_LINES:
        for n, count in enumerate(line_counts(rng, OTHER_PATIENTS, OTHER_ENTRIES)):
            patient = uuid.uuid4()
            people.append(_person(patient, other, n))
            ledger.patient(other, patient, count)
    ranked = sorted(zip(counts, ours, strict=True), reverse=True)
    heavy = [p for _, p in ranked[: max(1, patients // 100)]]
    return ledger, people, ours, heavy


def _person(patient: uuid.UUID, pharmacy: uuid.UUID, n: int) -> tuple[Any, ...]:
    return (patient, pharmacy, f"bench{n}", "patient", dt.date(1970, 1, 1), "U", "00000", "{}",
            NOW, NOW)  # fmt: skip


PEOPLE_COLUMNS = (
    "id", "pharmacy_id", "last_name_key", "first_name_key", "date_of_birth", "gender",
    "postal_code", "demographics", "created_at", "updated_at",
)  # fmt: skip


async def copy_in(ledger: Ledger, people: list[tuple[Any, ...]], fresh: bool) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        if fresh:
            await conn.execute("TRUNCATE ledger_entries")
        # in the order they were written: a patient's lines spread over the table, as in life
        ledger.rows.sort(key=lambda row: row[-1])
        async with conn.transaction():
            await conn.copy_records_to_table("patients", records=people, columns=PEOPLE_COLUMNS)
            await conn.copy_records_to_table(
                "ledger_entries", records=ledger.rows, columns=Ledger.COLUMNS
            )
        for ddl in filter(None, DDL.split(";")):
            await conn.execute(ddl)
        await conn.execute("VACUUM ANALYZE ledger_entries")
        await conn.execute("ANALYZE patients")
    finally:
        await conn.close()


# --- the load ----------------------------------------------------------------------------------


async def load(url_for: Any, token: str, seconds: float, seed: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=headers) as session:

        async def client(n: int) -> None:
            rng = random.Random(seed * 100 + n)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url_for(rng), params={"limit": "50"}) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return latencies


def summary(latencies: list[float], cpu: float | None = None) -> dict[str, Any]:
    q = statistics.quantiles(latencies, n=100)
    result: dict[str, Any] = {
        "requests": len(latencies),
        "p50_ms": round(q[49] * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }
    if cpu is not None:
        result["cpu_ms_per_request"] = round(cpu * 1000 / len(latencies), 2)
    return result


def measure(name: str, url_for: Any, token: str, pid: int, profile: str = "") -> dict[str, Any]:
    asyncio.run(load(url_for, token, 3, 0))  # warm-up, not counted
    spy = None
    if profile:
        spy = subprocess.Popen(
            [PY_SPY, "record", "--gil", "-p", str(pid), "-d", str(int(SECONDS)), "-f", "raw",
             "-o", profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    before = cpu_seconds(pid)
    latencies = asyncio.run(load(url_for, token, SECONDS, 1))
    if spy is not None:
        spy.wait(60)
    result = summary(latencies, cpu_seconds(pid) - before)
    result["load_avg"] = os.getloadavg()[0]
    print(name, json.dumps(result), flush=True)
    return result


async def timed_get(url: str, token: str, params: dict[str, str]) -> tuple[float, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        started = time.perf_counter()
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(600)) as answer:
            body = await answer.json()
            assert answer.status == 200, body
        return time.perf_counter() - started, body


async def parts(provider: str, pharmacy: uuid.UUID) -> dict[str, float]:
    """The reconciliation's parts, timed with the hub's own functions (as day_report runs them,
    the lookups of the transactions no ledger names left out)."""
    from eprescribe.payments import reconcile
    from server.db import Database
    from server.payments import store
    from server.payments.provider import StripeProvider
    from server.payments.reconciling import _within, day_bounds

    start, end = day_bounds(DAY)
    stripe = StripeProvider(SECRET_KEY, provider)
    t0 = time.perf_counter()
    movements = await asyncio.to_thread(stripe.movements, start - SLACK, end + SLACK)
    t1 = time.perf_counter()
    db = Database(PG + DATABASE)
    try:
        async with db.sessions() as session:
            owners = await session.run_sync(
                lambda s: store.pharmacies_of_refs(s, [m.ref for m in movements])
            )
            t2 = time.perf_counter()
            ledger = await session.run_sync(lambda s: store.day_movements(s, pharmacy, start, end))
            t3 = time.perf_counter()
            await session.run_sync(lambda s: store.collected(s, pharmacy, start, end))
            t4 = time.perf_counter()
    finally:
        await db.close()
    t5 = time.perf_counter()
    day_refs = {line.ref for line in ledger}
    ours = [
        m
        for m in movements
        if owners.get(m.ref) == pharmacy and (_within(m, start, end) or m.ref in day_refs)
    ]
    done = reconcile(ledger, ours)
    t6 = time.perf_counter()
    return {
        "provider_transactions_read": len(movements),
        "ledger_lines": len(ledger),
        "matched": len(done.matched),
        "discrepancies": len(done.discrepancies),
        "provider_s": round(t1 - t0, 3),
        "db_owners_s": round(t2 - t1, 3),
        "db_day_lines_s": round(t3 - t2, 3),
        "db_collected_s": round(t4 - t3, 3),
        "matching_s": round(t6 - t5, 4),
    }


async def provider_stats(provider: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{provider}/_stats") as answer:
        stats: dict[str, Any] = await answer.json()
        return stats


def main() -> None:
    if len(sys.argv) > 1:  # a side process
        role, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        (serve_provider if role == "provider" else serve_bare)(port, data)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    rng = random.Random(18)
    results: dict[str, Any] = {
        "entries": ENTRIES,
        "patients": PATIENTS,
        "day": DAY.isoformat(),
        "clients": CLIENTS,
        "seconds": SECONDS,
        "load_avg_start": os.getloadavg(),
        "ddl": DDL,
    }
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # the rows first (the provider's stand-in serves what the ledger says was paid)
        pharmacy, other = uuid.uuid4(), uuid.uuid4()  # placeholders, replaced below
        started = time.perf_counter()
        ledger, people, ours, heavy = build(rng, pharmacy, other, PATIENTS, ENTRIES)
        txns, made = provider_transactions(ledger.moves, rng)
        results["provider"] = {"transactions": len(txns), **made}
        results["build_s"] = round(time.perf_counter() - started, 1)
        with side_process(work, "provider", txns) as (provider, _):
            env, console = prepare(work, base, provider)
            seed = add_pharmacist(env)
            a, b = asyncio.run(pharmacies())
            swap = {pharmacy: a, other: b}
            ledger.rows = [(r[0], swap[r[1]], *r[2:]) for r in ledger.rows]
            people = [(p[0], swap[p[1]], *p[2:]) for p in people]
            small, small_people, small_ours, small_heavy = build(
                rng, a, b, SMALL_PATIENTS, SMALL_ENTRIES
            )
            asyncio.run(copy_in(small, small_people, fresh=False))
            serve = [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"]
            with process(serve, env, work / "hub.log") as hub:
                wait_port(port)
                token = sign_in(base, console, seed, SCOPE, "pharm", PASSWORD)
                # first with 1,000 entries in all
                results["small"] = {
                    "entries": len(small.rows),
                    "balance": run_balance(base, token, hub.pid, small_ours, small_heavy),
                    "receivables": run_receivables(base, token),
                }
                started = time.perf_counter()
                asyncio.run(copy_in(ledger, people, fresh=True))
                results["seed_s"] = round(time.perf_counter() - started, 1)
                print("seeded", len(ledger.rows), "entries in", results["seed_s"], "s", flush=True)
                del ledger
                results["balance"] = run_balance(base, token, hub.pid, ours, heavy, PROFILE)
                page = asyncio.run(timed_get(f"{base}/api/v1/patients/{heavy[0]}/ledger",
                                             token, {"limit": "50"}))[1]  # fmt: skip
                results["reconciliation"] = run_reconciliation(base, token, provider, a)
                results["receivables"] = run_receivables(base, token)
        with side_process(work, "bare", page) as (bare, pid):
            results["bare"] = measure(
                "bare", lambda rng: f"{bare}/api/v1/patients/{uuid.uuid4()}/ledger", "", pid
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bare_p95 = results["bare"]["p95_ms"]
    for r in (results["balance"], results["small"]["balance"]):
        for name in ("random", "heavy"):
            r[name]["p95_ratio_bare"] = round(r[name]["p95_ms"] / bare_p95, 2)
    for name in ("random", "heavy"):
        results["small"]["balance"][name]["p95_ratio_1m_to_1k"] = round(
            results["balance"][name]["p95_ms"] / results["small"]["balance"][name]["p95_ms"], 2
        )
    results["load_avg_end"] = os.getloadavg()
    print(json.dumps(results, indent=2, default=str))
    r = results["balance"]["random"]
    print(
        f"balance p95 {r['p95_ms']} ms (target < {TARGET_MS:.0f}), {r['p95_ratio_bare']}x bare "
        f"({bare_p95} ms); 1M/1k p95 ratio "
        f"{results['small']['balance']['random']['p95_ratio_1m_to_1k']}"
    )


def run_balance(
    base: str,
    token: str,
    pid: int,
    patients: list[uuid.UUID],
    heavy: list[uuid.UUID],
    profile: str = "",
) -> dict[str, Any]:
    return {
        "random": measure(
            "balance random",
            lambda rng: f"{base}/api/v1/patients/{rng.choice(patients)}/ledger",
            token,
            pid,
            profile,
        ),
        "heavy": measure(
            "balance heavy",
            lambda rng: f"{base}/api/v1/patients/{rng.choice(heavy)}/ledger",
            token,
            pid,
        ),
    }


def run_reconciliation(base: str, token: str, provider: str, pharmacy: uuid.UUID) -> dict[str, Any]:
    runs = []
    for _ in range(RECONCILE_RUNS):
        before = asyncio.run(provider_stats(provider))
        seconds, body = asyncio.run(
            timed_get(f"{base}/api/v1/payments/reconciliation", token, {"day": DAY.isoformat()})
        )
        after = asyncio.run(provider_stats(provider))
        runs.append(
            {
                "seconds": round(seconds, 3),
                "provider_pages": after["pages"] - before["pages"],
                "provider_serving_s": round(after["seconds"] - before["seconds"], 3),
                "matched": body["matched"],
                "discrepancies": {
                    code: sum(d["code"] == code for d in body["discrepancies"])
                    for code in {d["code"] for d in body["discrepancies"]}
                },
            }
        )
        print("reconciliation", json.dumps(runs[-1]), flush=True)
    split = asyncio.run(parts(provider, pharmacy))
    print("reconciliation parts", json.dumps(split), flush=True)
    return {"runs": runs, "parts": split}


def run_receivables(base: str, token: str) -> dict[str, Any]:
    runs = []
    for _ in range(2):
        seconds, body = asyncio.run(
            timed_get(
                f"{base}/api/v1/payments/receivables", token, {"as_of": NOW.date().isoformat()}
            )
        )
        runs.append(round(seconds, 3))
        print("receivables", seconds, json.dumps(body), flush=True)
    return {"seconds": runs, "answer": body}


if __name__ == "__main__":
    main()
