"""The audit trail is hash-chained, append-only, and its verification finds any tampering."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from server import audit
from server.audit.models import AuditChain, AuditEvent, AuditPending
from server.db import Database
from server.db.migrate import upgrade
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script, sample_newrx

SOMEONE = audit.Actor("user", "u-1", None, "192.0.2.7")


async def _traffic(hub: Hub, messages: int = 12) -> None:
    """Concurrent intake (bulk appends) and single appends from other transactions."""
    await hub.pharmacy()
    token = await hub.sender_token()

    async def one_read(n: int) -> None:
        await audit.record(hub.db, SOMEONE, audit.Event("test.read", "thing", str(n)))

    replies = await asyncio.gather(
        *(post_script(hub, sample_newrx(), token) for _ in range(messages)),
        *(one_read(n) for n in range(messages)),
    )
    assert all(r.status == 200 for r in replies[:messages])


async def _count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def _tamper(db: Database, statement: str) -> None:
    """What someone with the database's admin rights could do: bypass the append-only guard."""
    async with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(statement))
        else:
            await conn.execute(text("DROP TRIGGER audit_events_no_update"))
            await conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            await conn.execute(text(statement))


async def test_concurrent_writers_keep_one_intact_chain(hub: Hub) -> None:
    await _traffic(hub)
    report = await audit.verify(hub.db)
    assert report.intact, report.problem
    assert report.entries == await _count(hub.db)
    async with hub.db.sessions() as session:
        seqs = list(await session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        head = await session.get(AuditChain, audit.HEAD_ID)
    assert seqs == list(range(1, len(seqs) + 1))
    assert head is not None
    assert head.seq == len(seqs)


async def test_an_open_transaction_that_appended_holds_no_one_up(hub: Hub) -> None:
    """The chain's head is taken at the commit, not by the append: a writer whose unit of
    work is still open (its event loop busy, its client slow) delays no other audited
    writer, and its entries take their place when it commits, in the order written. (SQLite
    has one writer at a time whatever the trail does.)"""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers")
    held = asyncio.Event()
    release = asyncio.Event()

    async def slow_unit_of_work() -> None:
        async with hub.db.transaction() as session:
            await audit.add(session, SOMEONE, audit.Event("test.slow", "thing", "first"))
            await audit.add(session, SOMEONE, audit.Event("test.slow", "thing", "second"))
            held.set()
            await release.wait()

    slow = asyncio.create_task(slow_unit_of_work())
    await held.wait()
    # with the head locked by the append, this waited for the slow unit of work
    await asyncio.wait_for(
        audit.record(hub.db, SOMEONE, audit.Event("test.read", "thing", "quick")), timeout=5
    )
    release.set()
    await slow
    async with hub.db.sessions() as session:
        written = list(
            await session.scalars(select(AuditEvent.resource_id).order_by(AuditEvent.seq))
        )
    assert written == ["quick", "first", "second"]
    report = await audit.verify(hub.db)
    assert report.intact, report.problem


async def test_verify_reports_entries_committed_but_never_chained(hub: Hub) -> None:
    """Written with the chaining trigger off (someone with the database's admin rights, a
    restore with --disable-triggers): the chain itself holds, but the trail is not whole."""
    await audit.record(hub.db, SOMEONE, audit.Event("test.read", "thing", "1"))
    row = audit.values(SOMEONE, audit.Event("test.read", "thing", "2"))
    postgresql = hub.db.engine.dialect.name == "postgresql"
    async with hub.db.engine.begin() as conn:
        if postgresql:
            await conn.execute(
                text("ALTER TABLE audit_pending DISABLE TRIGGER audit_pending_flush")
            )
        await conn.execute(
            sa.insert(AuditPending),
            [{**row, "tail": audit.canonical_tail({**row}), "flush": True}],
        )
        if postgresql:
            await conn.execute(
                text("ALTER TABLE audit_pending ENABLE ALWAYS TRIGGER audit_pending_flush")
            )
    report = await audit.verify(hub.db)
    assert not report.intact
    assert report.problem is not None
    assert "1 entries were committed but never chained" in report.problem


async def test_a_rolled_back_append_leaves_nothing(hub: Hub) -> None:
    async def append_then_fail() -> None:
        async with hub.db.transaction() as session:
            await audit.add(session, SOMEONE, audit.Event("test.lost", "thing", "1"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await append_then_fail()
    await audit.record(hub.db, SOMEONE, audit.Event("test.read", "thing", "2"))
    async with hub.db.sessions() as session:
        written = list(await session.scalars(select(AuditEvent.resource_id)))
        pending = await session.scalar(select(func.count()).select_from(AuditPending))
    assert written == ["2"]
    assert pending == 0
    assert (await audit.verify(hub.db)).intact


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'failure' WHERE seq = 3",
        "UPDATE audit_events SET ip = '203.0.113.9' WHERE seq = 5",
        "UPDATE audit_events SET at = at - interval '1 hour' WHERE seq = 2",
    ],
)
async def test_updates_are_refused(hub: Hub, statement: str) -> None:
    await _traffic(hub, 3)
    if hub.db.engine.dialect.name != "postgresql" and "interval" in statement:
        statement = "UPDATE audit_events SET at = '2020-01-01 00:00:00' WHERE seq = 2"
    with pytest.raises(DBAPIError, match="append-only"):
        async with hub.db.engine.begin() as conn:
            await conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"):
        async with hub.db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    assert (await audit.verify(hub.db)).intact


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("UPDATE audit_events SET outcome = 'failure' WHERE seq = 4", "entry 4 was altered"),
        (
            "UPDATE audit_events SET actor = 'user:someone-else' WHERE seq = 1",
            "entry 1 was altered",
        ),
        ("DELETE FROM audit_events WHERE seq = 6", "entry 6 is missing"),
        (
            "DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)",
            "entries were removed from the end",
        ),
        (
            # an altered entry with its own hash recomputed still breaks the next link
            "UPDATE audit_events SET hash = '" + "a" * 64 + "' WHERE seq = 2",
            "entry 2 was altered",
        ),
    ],
)
async def test_verify_finds_tampering(hub: Hub, statement: str, problem: str) -> None:
    await _traffic(hub, 5)
    assert (await audit.verify(hub.db)).intact
    await _tamper(hub.db, statement)
    report = await audit.verify(hub.db)
    assert not report.intact
    assert problem in (report.problem or "")


async def test_a_rewritten_entry_breaks_the_link_to_the_next(hub: Hub) -> None:
    await _traffic(hub, 3)
    async with hub.db.sessions() as session:
        row = (
            (await session.execute(select(AuditEvent.__table__).where(AuditEvent.seq == 2)))
            .mappings()
            .one()
        )
    forged = {**row, "outcome": "failure"}
    forged_hash = audit.entry_hash(row["prev_hash"], forged)
    await _tamper(
        hub.db,
        f"UPDATE audit_events SET outcome = 'failure', hash = '{forged_hash}' WHERE seq = 2",  # noqa: S608
    )
    report = await audit.verify(hub.db)
    assert report.problem == "entry 3 does not follow entry 2"


async def test_export_since(hub: Hub) -> None:
    await _traffic(hub, 2)
    entries = [e async for e in audit.export(hub.db, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert {"at", "actor", "action", "outcome", "ip", "prev_hash", "hash"} <= set(entries[0])
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    later = [e async for e in audit.export(hub.db, dt.datetime.now(dt.UTC))]
    assert later == []


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_verify_and_export(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(TELEPHARM_DATA_DIR=str(tmp_path / "var"), TELEPHARM_LOG_LEVEL="WARNING")
    assert _cli(env, "migrate").returncode == 0
    args = ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "P"]
    assert _cli(env, *args).returncode == 0
    assert _cli(env, "client", "add", "--name", "EHR", "--scope", "script:send").returncode == 0
    verified = _cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact: 2 entries" in verified.stdout
    exported = _cli(env, "audit", "export", "--since", "2000-01-01")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["action"] for e in lines] == ["pharmacy.create", "client.create"]
    assert "secret" not in exported.stdout
    bad = _cli(env, "audit", "export", "--since", "last tuesday")
    assert bad.returncode == 2
    assert "ISO 8601" in bad.stderr

    database = tmp_path / "var" / "hub.sqlite3"
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET action = 'nothing.happened' WHERE seq = 1"))
    engine.dispose()
    broken = _cli(env, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        "telepharm: audit chain BROKEN after 0 good entries: entry 1 was altered after it "
        "was written"
    )


def test_migration_chains_existing_entries(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    upgrade(url, "0005")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, pharmacy_id, action, resource_type,"
                    " resource_id, outcome, ip, detail) VALUES (:at, 'operator:cli', NULL,"
                    " 'pharmacy.create', 'pharmacy', :n, 'success', NULL, :detail)"
                ),
                {"at": f"2026-01-0{n + 1} 10:00:00.123456", "n": str(n), "detail": '{"n": 1}'},
            )
    engine.dispose()
    upgrade(url)

    async def check() -> audit.ChainReport:
        db = Database(url)
        try:
            await audit.record(db, SOMEONE, audit.Event("test.after", "thing", "x"))
            return await audit.verify(db)
        finally:
            await db.close()

    report = asyncio.run(check())
    assert report.intact, report.problem
    assert report.entries == 4
