"""What the queue revision's count-up costs the intake of one pharmacy (issue 19).

`BENCH_DATABASE=... python -m tests.benchmarks.revision_bump` (PostgreSQL on 127.0.0.1; about a
minute). On a fresh database with one pharmacy, BENCH_WRITERS (1, 2, 4) intake writers
(``IntakeWriter``, one a hub process: each its own connection and batches of up to 200) store
BENCH_MESSAGES (3,000) NewRx for the one pharmacy as fast as they can, every writer's batches
counting up the same row (the statement's last part, ``writer._COUNT_UP``); then the same
without the count-up (``r`` an empty part); BENCH_ROUNDS (3) times each, alternately.
Printed: the median messages a second each way and their ratio, every run's rate, and the
revisions counted (one a batch committed with the count-up, warm-ups included).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import time
import uuid
from typing import Any

from eprescribe.ncpdp import NewRx, parse_message
from server import audit
from server.db import Database
from server.db.migrate import upgrade
from server.db.models import utcnow
from server.prescriptions import writer
from server.prescriptions.store import intake_record
from tests.functional.intake_helpers import sample_newrx

DATABASE = os.environ.get("BENCH_DATABASE", "telepharm_bench")
URL = f"postgresql+asyncpg://postgres@127.0.0.1/{DATABASE}"
WRITERS = [int(n) for n in os.environ.get("BENCH_WRITERS", "1,2,4").split(",")]
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PHARMACY = uuid.UUID("00000000-0000-4000-8000-000000000019")
ACTOR = audit.Actor("client", "bench", PHARMACY)


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qc", sql],
        check=True,
        capture_output=True,
    )


def records(count: int) -> list[writer.IntakeRecord]:
    """``count`` NewRx records of the one pharmacy, each its own message (copies of one
    parsed sample with fresh IDs: building them is not what is measured)."""
    raw = sample_newrx()
    message = parse_message(raw)
    assert isinstance(message.body, NewRx)
    first = intake_record(message, message.body, raw, ACTOR, PHARMACY, utcnow())
    out = []
    for _ in range(count):
        inbound, rx = uuid.uuid4(), uuid.uuid4()
        message_id = f"bump-{inbound.hex[:20]}"
        out.append(
            dataclasses.replace(
                first,
                message={**first.message, "id": inbound, "message_id": message_id},
                prescription={
                    **first.prescription,
                    "id": rx,
                    "inbound_message_id": inbound,
                    "message_id": message_id,
                },
                transition={**first.transition, "prescription_id": rx},
                audit={**first.audit, "resource_id": str(rx)},
            )
        )
    return out


async def run(db: Database, writers: int, batch: list[writer.IntakeRecord]) -> float:
    """Messages a second: ``batch`` spread over ``writers`` writers, all at once."""
    ours = [writer.IntakeWriter(db, in_flight=1) for _ in range(writers)]
    started = time.perf_counter()
    await asyncio.gather(*(ours[n % writers].write(r) for n, r in enumerate(batch)))
    seconds = time.perf_counter() - started
    for w in ours:
        await w.close()
    return len(batch) / seconds


async def revision(db: Database) -> int:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        found = await driver.fetchval(
            "SELECT sum(revision) FROM queue_revisions WHERE pharmacy_id = $1", PHARMACY
        )
        return int(found or 0)


async def measure() -> dict[str, Any]:
    """Each writer count BENCH_ROUNDS times with the count-up and without, alternately (a
    shared machine's load moves between runs): the medians."""
    db = Database(URL)
    results: dict[str, Any] = {"messages": MESSAGES, "rounds": ROUNDS}
    counted = writer._COUNT_UP
    try:
        for writers in WRITERS:
            rates: dict[str, list[float]] = {"with": [], "without": []}
            before = await revision(db)
            for _ in range(ROUNDS):
                for label, part in (("with", counted), ("without", "SELECT 1")):
                    writer._COUNT_UP = part
                    writer._single_statement_sql.cache_clear()
                    await run(db, writers, records(200))  # warm-up, not counted
                    rates[label].append(await run(db, writers, records(MESSAGES)))
            row: dict[str, Any] = {
                f"{label}_per_s": round(statistics.median(found)) for label, found in rates.items()
            }
            row["runs_per_s"] = {k: [round(x) for x in v] for k, v in rates.items()}
            row["ratio"] = round(row["with_per_s"] / row["without_per_s"], 3)
            row["revisions_counted"] = await revision(db) - before
            results[f"{writers}_writers"] = row
            print(writers, json.dumps(row), flush=True)
    finally:
        writer._COUNT_UP = counted
        writer._single_statement_sql.cache_clear()
        await db.close()
    return results


def main() -> None:
    psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    psql(f"CREATE DATABASE {DATABASE}")
    upgrade(URL)
    psql(
        "INSERT INTO pharmacies (id, ncpdpid, npi, name, created_at) VALUES"  # noqa: S608
        f" ('{PHARMACY}', '1234567', '1000000004', 'Bench', now())",  # a constant UUID
        DATABASE,
    )
    try:
        print(json.dumps(asyncio.run(measure()), indent=2))
    finally:
        psql(f"DROP DATABASE IF EXISTS {DATABASE}")


if __name__ == "__main__":
    main()
