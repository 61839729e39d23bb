"""A patient's timeline with 1,000 events (issue 17).

`python -m tests.benchmarks.timeline` (PostgreSQL and Redis on 127.0.0.1, as intake.py; about
a minute). A hub process on a fresh database (``fill_hub.py``, one NewRx received the real way,
a technician signed in); then, inserted directly, one patient with BENCH_EVENTS (1,000) events
and BENCH_OTHERS (200) other patients of the pharmacy with as many each as BENCH_OTHER_EVENTS
(100), each event one row of the table that holds it: per prescription (a copy of the received
one) its four transitions, a note, a request to the prescriber, a fill with three transitions
and a notification. First the whole timeline is walked page by page (BENCH_LIMIT, 50), checking
every event comes once, newest first; then BENCH_CLIENTS (4) clients ask BENCH_REQUESTS (400)
requests one after another (after as many not counted) of:

- **first**: ``GET /api/v1/patients/{id}/timeline`` (the profile as it opens);
- **deep**: the same with ``after`` a cursor from the last tenth (the oldest events);
- **bare**: a bare aiohttp handler in its own process answering the same first page
  (``json.dumps`` each time): the floor.

Target: p95 under 50 ms; printed beside it, the ratio to the bare p95 in the same run and the
hub's CPU a request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from tests.benchmarks.fill_hub import DSN, _copy, _replaced, fill_hub
from tests.benchmarks.product_check_queue import measure
from tests.support.processes import free_port, wait_port

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000"))
OTHERS = int(os.environ.get("BENCH_OTHERS", "200"))
OTHER_EVENTS = int(os.environ.get("BENCH_OTHER_EVENTS", "100"))
LIMIT = int(os.environ.get("BENCH_LIMIT", "50"))
TARGET_MS = 50.0
#: events a seeded prescription makes: 4 transitions, a note, a request, a fill with 3
#: transitions, a notification
PER_RX = 10
RX_STEPS = [(None, "received"), ("received", "checking"), ("checking", "awaiting_review"),
            ("awaiting_review", "approved")]  # fmt: skip
FILL_STEPS = [(None, "filling"), ("filling", "product_check"), ("product_check", "ready")]


def serve_bare(port: int, page_file: str) -> None:
    from tests.benchmarks.baseline_server import serve as run

    page = json.loads(Path(page_file).read_text())

    async def listing(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(page).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/patients/{id}/timeline", listing)
    run(app, port)


@contextmanager
def bare_server(work: Path, page: dict[str, Any]) -> Iterator[tuple[str, int]]:
    port = free_port()
    page_file = work / "page.json"
    page_file.write_text(json.dumps(page))
    args = [sys.executable, "-m", "tests.benchmarks.timeline", str(port), str(page_file)]
    with (work / "bare.log").open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


async def seed(patients: list[tuple[uuid.UUID, int]]) -> None:
    """Profiles ``patients`` (ID, events) of the pharmacy, with their events, written with
    COPY; each patient's events a second apart, the first patient's the newest."""
    conn = await asyncpg.connect(DSN)
    try:
        rx = await conn.fetchrow("SELECT * FROM prescriptions LIMIT 1")
        assert rx is not None
        inbound = await conn.fetchrow(
            "SELECT * FROM inbound_messages WHERE id = $1", rx["inbound_message_id"]
        )
        user = await conn.fetchval("SELECT id FROM users WHERE username = 'tech'")
        now = dt.datetime.now(dt.UTC)
        rows: dict[str, list[dict[str, Any]]] = {
            k: []
            for k in (
                "patients",
                "inbound_messages",
                "prescriptions",
                "prescription_transitions",
                "prescription_notes",
                "clarification_requests",
                "fills",
                "fill_transitions",
                "notifications",
            )
        }
        serial = 0
        for p, (patient_id, events) in enumerate(patients):
            rows["patients"].append(
                {
                    "id": patient_id,
                    "pharmacy_id": rx["pharmacy_id"],
                    "last_name_key": f"bench{p}",
                    "first_name_key": "patient",
                    "date_of_birth": dt.date(1970, 1, 1),
                    "gender": "U",
                    "postal_code": "00000",
                    "demographics": "{}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            clock = iter(now - dt.timedelta(seconds=p * 10_000 + s) for s in range(events))
            for _ in range(events // PER_RX):
                serial += 1
                inbound_id, rx_id, fill_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
                message_id = f"bench-timeline-{serial}"
                times = sorted(next(clock) for _ in range(PER_RX))
                rows["inbound_messages"].append(
                    _replaced(inbound, id=inbound_id, message_id=message_id)
                )
                rows["prescriptions"].append(
                    _replaced(
                        rx,
                        id=rx_id,
                        inbound_message_id=inbound_id,
                        message_id=message_id,
                        patient_id=patient_id,
                        state="ready",
                        rx_number=None,
                        received_at=times[0],
                    )
                )
                for (before, after), at in zip(RX_STEPS, times[:4], strict=True):
                    rows["prescription_transitions"].append(
                        {
                            "prescription_id": rx_id,
                            "from_state": before,
                            "to_state": after,
                            "actor": "system:bench",
                            "reason": "bench",
                            "at": at,
                        }
                    )
                rows["prescription_notes"].append(
                    {
                        "prescription_id": rx_id,
                        "author_id": user,
                        "text": "synthetic note",
                        "created_at": times[4],
                    }
                )
                rows["clarification_requests"].append(
                    {
                        "id": uuid.uuid4(),
                        "prescription_id": rx_id,
                        "requested_by": user,
                        "reason_code": "other",
                        "text": "synthetic question",
                        "created_at": times[5],
                        "message_type": "RxChangeRequest",
                    }
                )
                rows["fills"].append(
                    {
                        "id": fill_id,
                        "prescription_id": rx_id,
                        "pharmacy_id": rx["pharmacy_id"],
                        "number": 0,
                        "state": "ready",
                        "state_since": times[8],
                        "controlled": False,
                        "quantity_owed": "30",
                        "unit": "C48542",
                        "started_at": times[6],
                        "updated_at": times[8],
                        "fillers": "[]",
                    }
                )
                for (before, after), at in zip(FILL_STEPS, times[6:9], strict=True):
                    rows["fill_transitions"].append(
                        {
                            "fill_id": fill_id,
                            "from_state": before,
                            "to_state": after,
                            "actor": "system:bench",
                            "reason": "bench",
                            "at": at,
                        }
                    )
                rows["notifications"].append(
                    {
                        "id": uuid.uuid4(),
                        "pharmacy_id": rx["pharmacy_id"],
                        "patient_id": patient_id,
                        "subject_id": rx_id,
                        "kind": "ready_for_pickup",
                        "channel": "email",
                        "recipient": "bench@example.test",
                        "language": "en",
                        "body": "synthetic",
                        "state": "sent",
                        "attempts": 1,
                        "next_attempt_at": times[9],
                        "created_at": times[9],
                        "updated_at": times[9],
                    }
                )
        async with conn.transaction():
            for table, table_rows in rows.items():
                await _copy(conn, table, table_rows)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def walk(base: str, token: str, patient: uuid.UUID) -> tuple[list[str], list[str], float]:
    """The whole timeline page by page: the events' keys, each page's cursor, the seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    keys: list[str] = []
    ats: list[str] = []
    cursors: list[str] = []
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:
        params = {"limit": str(LIMIT)}
        while True:
            url = f"{base}/api/v1/patients/{patient}/timeline"
            async with session.get(url, params=params) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            keys.extend(e["key"] for e in page["items"])
            ats.extend(e["at"] for e in page["items"])
            if not page["next"]:
                break
            cursors.append(page["next"])
            params = {"limit": str(LIMIT), "after": page["next"]}
    assert ats == sorted(ats, reverse=True), "not newest first"
    return keys, cursors, time.perf_counter() - started


def main() -> None:
    if len(sys.argv) > 1:  # the bare server process
        serve_bare(int(sys.argv[1]), sys.argv[2])
        return
    work = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    results: dict[str, Any] = {
        "events": EVENTS,
        "others": f"{OTHERS} patients x {OTHER_EVENTS}",
        "limit": LIMIT,
    }
    patient = uuid.uuid4()
    try:
        with fill_hub(work, 1, "filling") as hub:
            started = time.perf_counter()
            others = [(uuid.uuid4(), OTHER_EVENTS) for _ in range(OTHERS)]
            asyncio.run(seed([(patient, EVENTS), *others]))
            results["seed_s"] = round(time.perf_counter() - started, 1)
            keys, cursors, walked = asyncio.run(walk(hub.base, hub.token, patient))
            assert len(keys) == len(set(keys)) == EVENTS // PER_RX * PER_RX, len(keys)
            results["walk"] = {"pages": len(cursors) + 1, "seconds": round(walked, 2)}
            deep = cursors[int(len(cursors) * 0.9) :] or cursors
            url = f"{hub.base}/api/v1/patients/{patient}/timeline"

            def first(rng: random.Random) -> dict[str, str]:
                return {"limit": str(LIMIT)}

            def deep_page(rng: random.Random) -> dict[str, str]:
                return {"limit": str(LIMIT), "after": rng.choice(deep)}

            results["first"] = asyncio.run(measure("first", url, hub.token, hub.pid, first))
            results["deep"] = asyncio.run(measure("deep", url, hub.token, hub.pid, deep_page))
            page = asyncio.run(_page(url, hub.token))
        with bare_server(work, page) as (base, pid):
            results["bare"] = asyncio.run(
                measure("bare", f"{base}/api/v1/patients/{patient}/timeline", "", pid, lambda r: {})
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


async def _page(url: str, token: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
        session.get(url, params={"limit": str(LIMIT)}) as response,
    ):
        page: dict[str, Any] = await response.json()
        return page


if __name__ == "__main__":
    main()
