"""The intake's group commit keeps the audit chain whole whichever way a batch is written:
in one statement when the chain's head is where the writer left it, under the head's lock
when another writer moved it, a batch held duplicates or the head is not known."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from eprescribe.ncpdp import Error, NewRx, parse_message
from server import audit
from server.admin.models import Pharmacy
from server.audit.models import AuditEvent
from server.db.models import utcnow
from server.prescriptions.models import InboundMessage, Prescription, PrescriptionTransition
from server.prescriptions.store import intake_record
from server.prescriptions.writer import IntakeWriter
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script, sample_newrx

SOMEONE = audit.Actor("user", "u-1", None, "192.0.2.7")


async def _count(hub: Hub, model: type) -> int:
    async with hub.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _intact(hub: Hub) -> int:
    report = await audit.verify(hub.db)
    assert report.intact, report.problem
    return report.entries


async def test_batches_between_other_writers_appends_keep_one_chain(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    for round_ in range(3):
        for _wave in range(2):
            replies = await asyncio.gather(
                *(post_script(hub, sample_newrx(), token) for _ in range(4))
            )
            assert [r.status for r in replies] == [200] * 4
            assert all([b"<Status>" in await r.read() for r in replies])
        # another writer moves the head: the next batch must notice and still chain on
        await audit.record(hub.db, SOMEONE, audit.Event("test.read", "thing", str(round_)))
    assert await _count(hub, InboundMessage) == 24
    assert await _count(hub, Prescription) == 24
    assert await _count(hub, PrescriptionTransition) == 24
    receipts = select(func.count()).where(AuditEvent.action == "prescription.receive")
    async with hub.db.sessions() as session:
        assert await session.scalar(receipts) == 24
    assert await _intact(hub) == await _count(hub, AuditEvent)


def _resent(message_id: str) -> bytes:
    """Another message under ``message_id``."""
    return sample_newrx(message_id).replace(b"2026-11-20T10:00:00Z", b"2026-11-20T10:00:01Z")


async def test_duplicates_in_a_batch_leave_no_entry_and_no_gap(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    first = [uuid.uuid4().hex for _ in range(4)]
    assert all(
        r.status == 200
        for r in await asyncio.gather(*(post_script(hub, sample_newrx(m), token) for m in first))
    )
    before = await _intact(hub)
    # the used MessageIDs again, with other bodies (an identical resend is acknowledged again)
    again = [_resent(m) for m in first[:2]] + [sample_newrx() for _ in range(6)]
    replies = await asyncio.gather(*(post_script(hub, body, token) for body in again))
    bodies = [await r.read() for r in replies]
    assert sum(b"<Status>" in b for b in bodies) == 6
    errors = [parse_message(b).body for b in bodies if b"<Status>" not in b]
    assert [(e.code, e.description_codes) for e in errors if isinstance(e, Error)] == [
        ("900", ("220",))
    ] * 2
    assert await _count(hub, InboundMessage) == 10
    assert await _intact(hub) == before + 6


async def test_writers_racing_for_the_head_keep_one_chain(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()

    async def reads() -> None:
        for n in range(20):
            await audit.record(hub.db, SOMEONE, audit.Event("test.read", "thing", str(n)))

    results = await asyncio.gather(
        reads(), *(post_script(hub, sample_newrx(), token) for _ in range(60))
    )
    assert all(r.status == 200 for r in results[1:])
    assert await _count(hub, InboundMessage) == 60
    assert await _intact(hub) == await _count(hub, AuditEvent)


async def test_writes_one_after_another_each_get_a_drainer(hub: Hub) -> None:
    """A write right after the last drainer settled it (before that drainer left the set)
    must still be drained, with one transaction in flight as on PostgreSQL."""
    await hub.pharmacy()
    async with hub.db.sessions() as session:
        pharmacy_id = await session.scalar(select(Pharmacy.id))
    assert pharmacy_id is not None
    writer = IntakeWriter(hub.db, in_flight=1)
    for _ in range(3):
        raw = sample_newrx()
        message = parse_message(raw)
        assert isinstance(message.body, NewRx)
        actor = audit.Actor("client", "c", pharmacy_id)
        record = intake_record(message, message.body, raw, actor, pharmacy_id, utcnow())
        async with asyncio.timeout(10):  # not wait_for: its task would hide the race
            await writer.write(record)
    await writer.close()
    assert await _count(hub, InboundMessage) == 3
    await _intact(hub)


async def test_a_kept_connection_the_server_closed_is_replaced(hub: Hub) -> None:
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("the writer keeps connections on PostgreSQL only")
    await hub.pharmacy()
    token = await hub.sender_token()
    assert (await post_script(hub, sample_newrx(), token)).status == 200
    async with hub.db.engine.connect() as conn:  # what a restart does to every session
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    await asyncio.sleep(0.2)  # the hub notices the closed socket
    reply = await post_script(hub, sample_newrx(), token)
    assert reply.status == 200
    assert b"<Status>" in await reply.read()
    assert await _count(hub, InboundMessage) == 2
