"""A hub for the fill flow's benchmarks (uploads.py, product_check_queue.py): a fresh
PostgreSQL database (BENCH_DATABASE, as intake.py's), a technician signed in through the real
browser flow, and any number of fills in a state, inserted directly (the flow that makes them
is the functional tests' business; here only their rows matter).

One NewRx is posted as a prescriber would, so that its inbound message and prescription are
the hub's own; the fills' prescriptions are copies of that one (each with its own ID, message
ID and Rx number, since one fill of a prescription is open at a time), written with COPY.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import asyncpg

from tests.benchmarks.intake import (
    BIN,
    BROKER,
    DATABASE,
    NCPDPID,
    free_port,
    prepare_hub,
    process,
    token_for,
    wait_port,
)
from tests.support.signin import sign_in

PASSWORD = "a long and private passphrase for load"
SCOPE = "openid rx:read rx:verify"
DSN = f"postgresql://postgres@127.0.0.1/{DATABASE}"
#: what a fill's prescription is when the fill is in each state
RX_STATE = {"filling": "filling", "product_check": "product_check", "ready": "ready"}


@dataclass(frozen=True, slots=True)
class FillHub:
    base: str
    #: a technician's access token (rx:read rx:verify)
    token: str
    pid: int
    fills: list[uuid.UUID]


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    import subprocess

    return subprocess.run(
        [str(BIN / "telepharm"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@contextlib.contextmanager
def fill_hub(
    work: Path, count: int, state: str, broker: str = BROKER, **extra: str
) -> Iterator[FillHub]:
    """A hub process (``serve --no-worker``) with ``count`` fills in ``state``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = prepare_hub(work, base, broker, TELEPHARM_LOG_LEVEL="WARNING", **extra)
    added = _cli(
        env,
        *["user", "add", "--pharmacy", NCPDPID, "--username", "tech", "--role", "technician"],
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    uri = next(line for line in added.splitlines() if line.startswith("otpauth://"))
    seed = parse_qs(urlparse(uri).query)["secret"][0]
    console = _cli(
        env, "client", "add", "--name", "console", "--scope", SCOPE, "--redirect-uri", f"{base}/cb"
    )
    found = re.search(r'"client_id": "([^"]+)"', console)
    assert found is not None
    with process(
        [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"], env, work / "hub.log"
    ) as hub:
        wait_port(port)
        sender = token_for(base, credentials)
        fills = asyncio.run(seed_fills(base, sender, count, state))
        token = sign_in(base, found.group(1), seed, SCOPE, "tech", PASSWORD)
        yield FillHub(base, token, hub.pid, fills)


async def seed_fills(base: str, sender_token: str, count: int, state: str) -> list[uuid.UUID]:
    """``count`` fills in ``state``, oldest first by a second each, of copies of one received
    prescription; their IDs in queue order."""
    template = resources.files("server").joinpath("samples/newrx.xml").read_bytes()
    body = template.replace(b"DEMO-MESSAGE-ID", f"bench-{uuid.uuid4().hex[:20]}".encode())
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/ncpdp/script",
            data=body,
            headers={
                "Content-Type": "application/xml",
                "Authorization": f"Bearer {sender_token}",
            },
        ) as response,
    ):
        reply = await response.read()
    assert b"<Status>" in reply, reply
    conn = await asyncpg.connect(DSN)
    try:
        rx = await conn.fetchrow("SELECT * FROM prescriptions LIMIT 1")
        assert rx is not None
        inbound = await conn.fetchrow(
            "SELECT * FROM inbound_messages WHERE id = $1", rx["inbound_message_id"]
        )
        assert inbound is not None
        now = dt.datetime.now(dt.UTC)
        inbound_rows, rx_rows, fill_rows = [], [], []
        fill_ids = [uuid.uuid4() for _ in range(count)]
        for n, fill_id in enumerate(fill_ids):
            message_id = f"bench-fill-{n}"
            inbound_id, rx_id = uuid.uuid4(), uuid.uuid4()
            inbound_rows.append(_replaced(inbound, id=inbound_id, message_id=message_id))
            rx_rows.append(
                _replaced(
                    rx,
                    id=rx_id,
                    inbound_message_id=inbound_id,
                    message_id=message_id,
                    state=RX_STATE[state],
                    rx_number=f"{n + 1:07d}",
                )
            )
            since = now - dt.timedelta(seconds=count - n)
            fill_rows.append(
                {
                    "id": fill_id,
                    "prescription_id": rx_id,
                    "pharmacy_id": rx["pharmacy_id"],
                    "number": 0,
                    "state": state,
                    "state_since": since,
                    "controlled": False,
                    "quantity_owed": "30",
                    "unit": "C48542",
                    "quantity": "30" if state != "filling" else None,
                    "ndc11": "11111010430" if state != "filling" else None,
                    "lot": "LOT42A" if state != "filling" else None,
                    "started_at": since,
                    "submitted_at": since if state != "filling" else None,
                    "updated_at": since,
                    "fillers": "[]",
                }
            )
        async with conn.transaction():
            await _copy(conn, "inbound_messages", inbound_rows)
            await _copy(conn, "prescriptions", rx_rows)
            await _copy(conn, "fills", fill_rows)
        await conn.execute("ANALYZE inbound_messages; ANALYZE prescriptions; ANALYZE fills")
    finally:
        await conn.close()
    return fill_ids


def _replaced(record: Any, **values: Any) -> dict[str, Any]:
    return {**dict(record), **values}


async def _copy(conn: asyncpg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    await conn.copy_records_to_table(
        table, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
    )


if __name__ == "__main__":  # a smoke run: python -m tests.benchmarks.fill_hub
    import tempfile

    with fill_hub(Path(tempfile.mkdtemp(prefix="bench-fill-hub-")), 5, "filling") as hub:
        print(hub.base, len(hub.fills), file=sys.stderr)
