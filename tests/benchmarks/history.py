"""The console's reads with 1,000 and with 1,000,000 prescriptions of history (issue 19).

`BENCH_DATABASE=... python -m tests.benchmarks.history` (PostgreSQL and Redis on 127.0.0.1, as
intake.py; 15 to 20 minutes on a busy 2-core machine, most of it loading the million). A hub
process (``serve --no-worker``) on a fresh database with two pharmacies, a pharmacist signed
in at each through the browser flow, and one NewRx received the real way; then, inserted
directly by ``INSERT ... SELECT generate_series`` (copies of the received prescription), at
each pharmacy the same work: BENCH_OPEN (250) open prescriptions (awaiting review, 20 in
review with a running claim, 30 received; 1 in 50 urgent) and 5 scheduled consults; and its
history: BENCH_HISTORY (1,000 at the small pharmacy, 1,000,000 at the big one) prescriptions
received a minute apart before the work, 90 % completed, 5 % rejected, 5 % cancelled, 1 in 10
with a claim that ran out long ago, a patient profile for every 10 of them and an ended consult
of the pharmacist's for every 10. After ANALYZE, each read is asked of both pharmacies at the
same time, BENCH_CLIENTS (4) clients each asking BENCH_REQUESTS (400) requests one after
another (after as many not counted), so both meet the same load of a shared machine:

- **queue**: ``GET /api/v1/prescriptions?state=awaiting_review&limit=50`` (the console's list);
- **queue_all**: the same without a state (every state: the oldest history first);
- **revision**: ``GET /api/v1/queue/revision`` (every console polls it every 2.5 s);
- **consults**: ``GET /api/v1/consults`` (the open ones) and **consults_ended** (``state=ended``,
  the newest page of the history);
- **search**: ``GET /api/v1/patients?name=hist`` (a prefix every history profile shares: a
  page of 25 in name order), **profile**: ``GET /api/v1/patients/{id}`` (10 prescriptions);
- **bare**: afterwards, a bare aiohttp handler in its own process answering the revision's
  body: the floor.

Target: each read's p95 at the big pharmacy within 1.5x of the small one's. Printed beside:
the ratio to the bare p95, the revision poll before (the two grouped statements over the
pharmacy's prescriptions it ran until migration 0040, timed alone on the database, no HTTP),
and the plans PostgreSQL chose (first scan, buffers touched) for the queue's page, the claims,
the ended consults and the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import asyncpg

from tests.benchmarks.fill_hub import DSN, _cli
from tests.benchmarks.intake import (
    BIN,
    BROKER,
    NCPDPID,
    free_port,
    prepare_hub,
    process,
    token_for,
    wait_port,
)
from tests.benchmarks.product_check_queue import load, measure, summary
from tests.benchmarks.timeline import bare_server
from tests.support.signin import sign_in

HISTORY = [int(n) for n in os.environ.get("BENCH_HISTORY", "1000,1000000").split(",")]
OPEN = int(os.environ.get("BENCH_OPEN", "250"))
RATIO_TARGET = 1.5
PASSWORD = "a long and private passphrase for load"
SCOPE = "openid rx:read rx:verify consults"
#: history rows inserted by one statement (each its own transaction: no huge one)
CHUNK = 200_000

#: the revision poll until migration 0040: per state, how many and the latest change, and the
#: claims running
OLD_REVISION = (
    "SELECT state, count(*), max(updated_at) FROM prescriptions"
    " WHERE pharmacy_id = $1 AND test IS false GROUP BY state ORDER BY state",
    "SELECT count(*) FROM prescriptions WHERE pharmacy_id = $1 AND claimed_until > now()",
)

INBOUND_SQL = """
INSERT INTO inbound_messages (id, sender_client_id, sender, message_id, transaction, version,
                              pharmacy_id, sha256, raw, received_at)
SELECT md5($6 || 'm' || g)::uuid, t.sender_client_id, t.sender, $6 || '-hist-' || g,
       t.transaction, t.version, $5::uuid, t.sha256, '\\x3c2f3e'::bytea,
       $3::timestamptz - g * interval '1 minute'
FROM generate_series($1::bigint, $2::bigint) g, (SELECT * FROM inbound_messages WHERE id = $4) t
"""

PRESCRIPTIONS_SQL = """
INSERT INTO prescriptions (id, pharmacy_id, inbound_message_id, message_id,
  prescriber_order_number, patient_id, state, drug_description, dea_schedule, written_date,
  patient, prescriber, medication, details, received_at, updated_at, urgent, test, claimed_by,
  claimed_until, rx_number, fills_dispensed, rx_fill_indicator)
SELECT md5($7 || 'p' || g)::uuid, $6::uuid, md5($7 || 'm' || g)::uuid, $7 || '-hist-' || g,
       t.prescriber_order_number, md5($7 || 'pt' || ((g - 1) / 10 + 1))::uuid,
       CASE WHEN g % 20 = 0 THEN 'rejected' WHEN g % 20 = 1 THEN 'cancelled' ELSE 'completed' END,
       t.drug_description, t.dea_schedule, t.written_date, t.patient, t.prescriber,
       t.medication, t.details,
       $3::timestamptz - g * interval '1 minute', $3::timestamptz - g * interval '1 minute',
       g % 50 = 0, false,
       CASE WHEN g % 10 = 2 THEN $5::uuid END,
       CASE WHEN g % 10 = 2 THEN $3::timestamptz - g * interval '1 minute' + interval '5 minutes'
       END,
       CASE WHEN g % 20 > 1 THEN lpad(g::text, 7, '0') END,
       CASE WHEN g % 20 > 1 THEN 1 ELSE 0 END, t.rx_fill_indicator
FROM generate_series($1::bigint, $2::bigint) g, (SELECT * FROM prescriptions WHERE id = $4) t
"""

PATIENTS_SQL = """
INSERT INTO patients (id, pharmacy_id, last_name_key, first_name_key, date_of_birth, gender,
                      postal_code, demographics, created_at, updated_at)
SELECT md5($6 || 'pt' || g)::uuid, $5::uuid, 'hist' || translate(g::text, '-0123456789',
       'zabcdefghij'), 'alex', date '1950-01-01' + (g % 20000)::int, 'F', '00000', t.patient,
       $3::timestamptz, $3::timestamptz
FROM generate_series($1::bigint, $2::bigint) g, (SELECT * FROM prescriptions WHERE id = $4) t
"""

CONSULTS_SQL = """
INSERT INTO consults (id, pharmacy_id, pharmacist_id, patient_id, state, invite_digest,
                      invite_expires_at, revision, created_at, updated_at)
SELECT md5($7 || g)::uuid, $4::uuid, $5::uuid, md5($8 || 'pt' || g)::uuid, $6::text,
       md5($7 || g),
       $3::timestamptz - g * interval '10 minutes' + interval '1 day', 0,
       $3::timestamptz - g * interval '10 minutes', $3::timestamptz - g * interval '10 minutes'
FROM generate_series($1::bigint, $2::bigint) g
"""

OPEN_SQL = """
INSERT INTO inbound_messages (id, sender_client_id, sender, message_id, transaction, version,
                              pharmacy_id, sha256, raw, received_at)
SELECT md5($5 || 'om' || g)::uuid, t.sender_client_id, t.sender, $5 || '-open-' || g,
       t.transaction, t.version, $4::uuid, t.sha256, '\\x3c2f3e'::bytea,
       $2::timestamptz - g * interval '1 s'
FROM generate_series(1, $1::int) g, (SELECT * FROM inbound_messages WHERE id = $3) t
"""

OPEN_RX_SQL = """
INSERT INTO prescriptions (id, pharmacy_id, inbound_message_id, message_id,
  prescriber_order_number, patient_id, state, drug_description, dea_schedule, written_date,
  patient, prescriber, medication, details, received_at, updated_at, urgent, test, claimed_by,
  claimed_until, fills_dispensed, rx_fill_indicator)
SELECT md5($6 || 'op' || g)::uuid, $5::uuid, md5($6 || 'om' || g)::uuid, $6 || '-open-' || g,
       t.prescriber_order_number, NULL,
       CASE WHEN g <= 20 THEN 'in_review' WHEN g <= 50 THEN 'received'
            ELSE 'awaiting_review' END,
       t.drug_description, t.dea_schedule, t.written_date, t.patient, t.prescriber,
       t.medication, t.details, $2::timestamptz - g * interval '1 s',
       $2::timestamptz - g * interval '1 s', g % 50 = 0, false,
       CASE WHEN g <= 20 THEN $4::uuid END,
       CASE WHEN g <= 20 THEN $2::timestamptz + interval '2 hours' END, 0, t.rx_fill_indicator
FROM generate_series(1, $1::int) g, (SELECT * FROM prescriptions WHERE id = $3) t
"""


@dataclass(frozen=True, slots=True)
class Side:
    """One of the two pharmacies: its tag (of its rows' IDs), ID, pharmacist and history."""

    tag: str
    ncpdpid: str
    history: int
    pharmacy: Any = None
    user: Any = None
    token: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    rx: Any
    inbound: Any
    now: dt.datetime


@contextlib.contextmanager
def two_pharmacy_hub(
    work: Path, sides: list[Side]
) -> Iterator[tuple[str, Callable[[list[Side]], list[Side]], list[Side]]]:
    """A hub process (``serve --no-worker``) on a fresh database: the pharmacies of ``sides``
    (the first is prepare_hub's), a pharmacist signed in at each, one NewRx received."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = prepare_hub(work, base, BROKER, TELEPHARM_LOG_LEVEL="WARNING")
    for side in sides[1:]:
        _cli(env, "pharmacy", "add", "--ncpdpid", side.ncpdpid, "--npi", "1111111112",
             "--name", f"History {side.tag}")  # fmt: skip
    console = _cli(
        env, "client", "add", "--name", "console", "--scope", SCOPE, "--redirect-uri", f"{base}/cb"
    )
    found = re.search(r'"client_id": "([^"]+)"', console)
    assert found is not None
    seeds = {}
    for side in sides:
        added = _cli(
            env,
            *["user", "add", "--pharmacy", side.ncpdpid, "--username", f"rph{side.tag}"],
            *["--role", "pharmacist", "--password-stdin"],
            stdin=PASSWORD + "\n",
        )
        uri = next(line for line in added.splitlines() if line.startswith("otpauth://"))
        seeds[side.tag] = parse_qs(urlparse(uri).query)["secret"][0]
    with process(
        [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"], env, work / "hub.log"
    ):
        wait_port(port, 180)  # a loaded machine starts it slowly
        asyncio.run(receive_one(base, token_for(base, credentials)))

        def signed_in(sides: list[Side]) -> list[Side]:
            """``sides`` with their pharmacists' access tokens: signed in just before they
            are used (an access token lives for minutes, the seeding takes longer)."""
            return [
                replace(
                    side,
                    token=sign_in(
                        base, found.group(1), seeds[side.tag], SCOPE, f"rph{side.tag}", PASSWORD
                    ),
                )
                for side in sides
            ]

        yield base, signed_in, asyncio.run(identify(sides))


async def receive_one(base: str, sender_token: str) -> None:
    template = resources.files("server").joinpath("samples/newrx.xml").read_bytes()
    body = template.replace(b"DEMO-MESSAGE-ID", b"history-template")
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {sender_token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/ncpdp/script", data=body, headers=headers) as response,
    ):
        assert b"<Status>" in await response.read()


async def identify(sides: list[Side]) -> list[Side]:
    conn = await asyncpg.connect(DSN)
    try:
        out = []
        for side in sides:
            pharmacy = await conn.fetchval(
                "SELECT id FROM pharmacies WHERE ncpdpid = $1", side.ncpdpid
            )
            user = await conn.fetchval("SELECT id FROM users WHERE username = $1", f"rph{side.tag}")
            out.append(replace(side, pharmacy=pharmacy, user=user))
        return out
    finally:
        await conn.close()


async def template() -> Template:
    conn = await asyncpg.connect(DSN)
    try:
        rx = await conn.fetchrow("SELECT id, inbound_message_id FROM prescriptions")
        assert rx is not None
        return Template(rx["id"], rx["inbound_message_id"], dt.datetime.now(dt.UTC))
    finally:
        await conn.close()


async def seed(t: Template, side: Side) -> float:
    """The side's open work (the same for both), then its history in chunks (a profile and
    an ended consult for every 10 prescriptions). Returns the seconds it took."""
    started = time.perf_counter()
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(OPEN_SQL, OPEN, t.now, t.inbound, side.pharmacy, side.tag)
        await conn.execute(OPEN_RX_SQL, OPEN, t.now, t.rx, side.user, side.pharmacy, side.tag)
        # 5 consults scheduled today, with patients of their own (the history's start at 1)
        await conn.execute(PATIENTS_SQL, -5, -1, t.now, t.rx, side.pharmacy, side.tag)
        await conn.execute(
            CONSULTS_SQL, -5, -1, t.now, side.pharmacy, side.user, "scheduled",
            side.tag + "oc", side.tag,
        )  # fmt: skip
        past = t.now - dt.timedelta(days=1)
        for low in range(1, side.history + 1, CHUNK):
            high = min(side.history, low + CHUNK - 1)
            # profiles (and ended consults) of rows low to high (low is 1 more than a
            # multiple of 10, high a multiple of 10)
            first, last = (low - 1) // 10 + 1, high // 10
            await conn.execute(PATIENTS_SQL, first, last, past, t.rx, side.pharmacy, side.tag)
            await conn.execute(INBOUND_SQL, low, high, past, t.inbound, side.pharmacy, side.tag)
            await conn.execute(
                PRESCRIPTIONS_SQL, low, high, past, t.rx, side.user, side.pharmacy, side.tag
            )
            await conn.execute(
                CONSULTS_SQL, first, last, past, side.pharmacy, side.user, "ended",
                side.tag + "c", side.tag,
            )  # fmt: skip
            print(f"  {side.tag}: history {high:,}", flush=True)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def old_revision(pharmacy: Any, rounds: int = 40) -> dict[str, float]:
    """The revision poll's statements before migration 0040, timed on the database alone."""
    conn = await asyncpg.connect(DSN)
    try:
        times = []
        for n in range(rounds + 5):
            started = time.perf_counter()
            for sql in OLD_REVISION:
                await conn.fetch(sql, pharmacy)
            if n >= 5:  # the first ones warm the cache
                times.append(time.perf_counter() - started)
    finally:
        await conn.close()
    q = statistics.quantiles(times, n=20)
    return {"p50_ms": round(q[9] * 1000, 2), "p95_ms": round(q[18] * 1000, 2)}


async def plans(side: Side) -> dict[str, str]:
    """What PostgreSQL reads for the queue's first page, the poll's claims, the ended
    consults and the search: the plan's first scan with the buffers touched."""
    queries = {
        "queue": (
            "SELECT * FROM prescriptions WHERE pharmacy_id = $1 AND test IS false"
            " AND state = 'awaiting_review' AND urgent IS false"
            " ORDER BY received_at, id LIMIT 50",
            side.pharmacy,
        ),
        "claims": (
            "SELECT count(*) FROM prescriptions WHERE pharmacy_id = $1"
            " AND claimed_until IS NOT NULL AND claimed_until > now()",
            side.pharmacy,
        ),
        "consults_ended": (
            "SELECT * FROM consults WHERE pharmacy_id = $1 AND pharmacist_id = $2"
            " AND state = 'ended' ORDER BY created_at DESC, id DESC LIMIT 100",
            side.pharmacy,
            side.user,
        ),
        "search": (
            "SELECT * FROM patients WHERE pharmacy_id = $1 AND merged_into_id IS NULL"
            " AND last_name_key LIKE 'hist%' ORDER BY last_name_key, first_name_key, id"
            " LIMIT 25",
            side.pharmacy,
        ),
    }
    conn = await asyncpg.connect(DSN)
    out = {}
    try:
        for name, (sql, *args) in queries.items():
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
            lines = [r[0] for r in rows]
            scans = [ln.strip() for ln in lines if "Scan" in ln]
            buffers = next((ln.strip() for ln in lines if "Buffers" in ln), "")
            out[name] = f"{scans[0] if scans else lines[0]}; {buffers}"
    finally:
        await conn.close()
    return out


def reads(base: str, side: Side) -> dict[str, tuple[str, dict[str, str]]]:
    api = f"{base}/api/v1"
    profile = str(uuid.UUID(hashlib.md5(f"{side.tag}pt50".encode()).hexdigest()))  # noqa: S324
    return {
        "queue": (f"{api}/prescriptions", {"state": "awaiting_review", "limit": "50"}),
        "queue_all": (f"{api}/prescriptions", {"limit": "50"}),
        "revision": (f"{api}/queue/revision", {}),
        "consults": (f"{api}/consults", {}),
        "consults_ended": (f"{api}/consults", {"state": "ended"}),
        "search": (f"{api}/patients", {"name": "hist"}),
        "profile": (f"{api}/patients/{profile}", {}),
    }


async def side_by_side(base: str, sides: list[Side], name: str) -> list[dict[str, Any]]:
    """``name`` asked of both pharmacies at once (BENCH_CLIENTS clients each), so both
    meet the same load of a shared machine: a warm-up, then the counted run."""
    jobs = []
    for side in sides:
        url, params = reads(base, side)[name]
        jobs.append((url, side.token, params))
    for _ in range(2):  # the first round warms up, not counted
        runs = await asyncio.gather(*(load(u, tok, lambda _r, p=p: p) for u, tok, p in jobs))
    out = [summary(latencies) for latencies in runs]
    print(name, json.dumps(out), flush=True)
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    least, most = min(HISTORY), max(HISTORY)
    sides = [Side("big", NCPDPID, most), Side("small", "7654321", least)]
    results: dict[str, Any] = {"open": OPEN, "history": [least, most]}
    try:
        with two_pharmacy_hub(work, sides) as (base, signed_in, sides):
            t = asyncio.run(template())
            for side in sorted(sides, key=lambda s: s.history):
                results[f"seed_{side.history}_s"] = round(asyncio.run(seed(t, side)), 1)
            asyncio.run(analyze())
            big, small = signed_in(sides)
            for name in reads(base, small):
                measured = asyncio.run(side_by_side(base, [small, big], name))
                results[name] = dict(zip((least, most), measured, strict=True))
            results["revision_before"] = {
                least: asyncio.run(old_revision(small.pharmacy)),
                most: asyncio.run(old_revision(big.pharmacy)),
            }
            results["plans"] = {
                least: asyncio.run(plans(small)),
                most: asyncio.run(plans(big)),
            }
        with bare_server(work, {"revision": "1.20"}) as (bare_base, pid):
            results["bare"] = asyncio.run(
                measure("bare", f"{bare_base}/api/v1/patients/x/timeline", "", pid, lambda r: {})
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)


async def analyze() -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute("ANALYZE prescriptions, inbound_messages, patients, consults")
    finally:
        await conn.close()


def report(results: dict[str, Any]) -> None:
    least, most = results["history"]
    bare = results["bare"]["p95_ms"]
    print(json.dumps(results, indent=2, default=str))
    print(f"\np95 with {most:,} prescriptions of history against {least:,} (target <= 1.5x):")
    for name in reads("", Side("x", "", 0)):
        small, big = results[name][least]["p95_ms"], results[name][most]["p95_ms"]
        verdict = "met" if big / small <= RATIO_TARGET else "NOT met"
        print(
            f"  {name:15} {small:8.2f} -> {big:8.2f} ms  {big / small:4.2f}x ({verdict});"
            f" {big / bare:5.2f}x bare ({bare} ms)"
        )
    before = results["revision_before"]
    print(
        f"revision poll before (its two statements alone, no HTTP): p95"
        f" {before[least]['p95_ms']} ms at {least:,}, {before[most]['p95_ms']} ms at {most:,};"
        f" after (the whole request): {results['revision'][least]['p95_ms']} ms,"
        f" {results['revision'][most]['p95_ms']} ms"
    )
    for size, found in results["plans"].items():
        for name, plan in found.items():
            print(f"  plan {size:>9,} {name}: {plan}")


if __name__ == "__main__":
    main()
