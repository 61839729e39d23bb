"""The validation queue with a real Celery worker process: the embedded SQLite broker always,
Redis when ``TELEPHARM_TEST_BROKER_URL`` is set."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from server.app import create_app
from server.db import Database
from server.patients.models import PatientProfile
from server.prescriptions.models import Finding, Prescription
from server.settings import Settings
from server.worker.checking import sync_engine
from tests.conftest import Hub
from tests.functional.check_helpers import EXPANDING, assert_parked, make_unreadable, someone
from tests.functional.conftest import BROKER
from tests.functional.intake_helpers import post_script
from tests.functional.test_verification import act
from tests.functional.test_whole_patient import PHENELZINE, SERTRALINE
from tests.functional.verification_helpers import staff
from tests.support.script_samples import newrx_xml

pytestmark = pytest.mark.slow


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
def make_hub(
    aiohttp_client: Callable[..., TestClient], queue_settings: Settings, db: Database
) -> HubFactory:
    """Hub processes on the test database (the first one registers the pharmacy)."""
    made: list[Hub] = []

    async def make(**overrides: str) -> Hub:
        settings = dataclasses.replace(queue_settings, **overrides)
        hub = Hub(await aiohttp_client(create_app(settings)), db)
        if not made:
            await hub.pharmacy()
        made.append(hub)
        return hub

    return make


def _newrx(drug: str = "lisinopril 10 MG Oral Tablet", **fields: str) -> bytes:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return newrx_xml(
        message_id=uuid.uuid4().hex[:20],
        drug_description=drug,
        **fields,
        prescriber_npi="1234567898",
        written_date=today,
        sent_time=f"{today}T00:00:00Z",
    )


async def _state_and_codes(hub: Hub) -> tuple[str, list[str]]:
    async with hub.db.sessions() as session:
        rx = (await session.scalars(select(Prescription))).one()
        codes = list(await session.scalars(select(Finding.code).order_by(Finding.id)))
    return rx.state, codes


async def _wait_for_review(hub: Hub, seconds: float = 45) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state, codes = await _state_and_codes(hub)
        if state == "awaiting_review":
            return codes
        await asyncio.sleep(0.2)
    raise AssertionError(f"still {state} after {seconds} s")


async def test_real_worker_checks_a_newrx(
    make_hub: HubFactory, worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    hub = await make_hub()
    worker()
    reply = await (await post_script(hub, _newrx(), await hub.sender_token())).read()
    assert b"<Status>" in reply
    assert await _wait_for_review(hub) == ["NPI_INVALID"]


async def test_broker_down_at_intake_then_checked_when_it_is_back(
    make_hub: HubFactory, worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    hub = await make_hub(broker_url="redis://127.0.0.1:9/0")
    reply = await (await post_script(hub, _newrx(), await hub.sender_token())).read()
    assert b"<Status>" in reply  # accepted and stored although nothing could be queued
    assert (await _state_and_codes(hub))[0] == "received"
    await make_hub()  # a hub with a working broker: its sweep
    worker()
    assert await _wait_for_review(hub) == ["NPI_INVALID"]


async def _kill_after_pickup(process: subprocess.Popen[bytes]) -> None:
    await asyncio.sleep(4)  # the worker picks the task up and blocks inside the check
    process.send_signal(signal.SIGKILL)
    process.wait(10)


async def test_worker_killed_mid_check_leaves_one_set_of_findings(
    make_hub: HubFactory, queue_settings: Settings, worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    hub = await make_hub()
    token = await hub.sender_token()
    first = worker()
    engine = sync_engine(queue_settings.sync_database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as blocker:
            # the check starts, then waits to write its findings: killed mid-check
            blocker.exec_driver_sql("LOCK TABLE findings IN ACCESS EXCLUSIVE MODE")
            await post_script(hub, _newrx(), token)
            await _kill_after_pickup(first)
    else:
        # SQLite locks the whole file (BEGIN IMMEDIATE): store first, then hold the lock
        await post_script(hub, _newrx(), token)
        with engine.begin():
            await _kill_after_pickup(first)
    engine.dispose()
    worker()
    assert await _wait_for_review(hub) == ["NPI_INVALID"]
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Finding)) == 1


async def test_ssri_after_an_active_maoi_shows_the_interaction_in_the_api(
    make_hub: HubFactory, worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """Issue 3's acceptance path: within a second on Redis (the embedded broker polls)."""
    hub = await make_hub()
    sender = await hub.sender_token()
    reader = await hub.token(await hub.machine_client("rx:read", pharmacy="1234567"), "rx:read")
    worker()
    await post_script(hub, _newrx(drug="phenelzine 15 MG Oral Tablet"), sender)
    await _wait_for_review(hub)
    async with hub.db.transaction() as session:  # the pharmacist approves (a later issue)
        await session.execute(update(Prescription).values(state="approved"))
    message = _newrx(drug="sertraline 50 MG Oral Tablet")
    started = time.monotonic()
    await post_script(hub, message, sender)
    rx = await _api_until_reviewed(hub, reader, message)
    elapsed = time.monotonic() - started
    assert "DRUG_INTERACTION" in [f["code"] for f in rx["findings"]]
    if BROKER:
        assert elapsed < 1.0, elapsed


async def test_a_pair_in_the_queue_is_flagged_and_cleared_by_the_real_worker(
    make_hub: HubFactory, worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """Issue 14 through the real app: two scripts for one patient in the queue flag each
    other; rejecting one clears the other after the re-check the hub queued."""
    hub = await make_hub()
    sender = await hub.sender_token()
    alice = await staff(hub, "alice")
    worker()
    maoi, ssri = _newrx(drug=PHENELZINE), _newrx(drug=SERTRALINE)
    await post_script(hub, maoi, sender)
    await _api_until_reviewed(hub, alice, maoi)
    await post_script(hub, ssri, sender)
    second = await _api_until_reviewed(hub, alice, ssri)
    assert "DRUG_INTERACTION" in [f["code"] for f in second["findings"]]
    first = await _api_until(hub, alice, maoi, lambda rx: not rx["findings_stale"])
    assert "DRUG_INTERACTION" in [f["code"] for f in first["findings"]]
    assert (await act(hub, alice, second["id"], "claim"))[0] == 200
    reason = {"reason_code": "drug_interaction", "text": "MAOI on file"}
    assert (await act(hub, alice, second["id"], "reject", reason))[0] == 200
    cleared = await _api_until(
        hub,
        alice,
        maoi,
        lambda rx: not rx["findings_stale"] and rx["findings_basis"] > first["findings_basis"],
    )
    assert "DRUG_INTERACTION" not in [f["code"] for f in cleared["findings"]]


async def _api_until(
    hub: Hub, token: str, message: bytes, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        rx = await _api_until_reviewed(hub, token, message)
        if done(rx):
            return rx
        await asyncio.sleep(0.1)
    raise AssertionError("not checked again in time")


async def _api_until_reviewed(hub: Hub, token: str, message: bytes) -> dict[str, Any]:
    message_id = message.split(b"<MessageID>")[1].split(b"<")[0].decode()
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        listing = await hub.client.get(
            "/api/v1/prescriptions", params={"message_id": message_id}, headers=headers
        )
        items = (await listing.json())["items"]
        if items and items[0]["state"] == "awaiting_review":
            detail = await hub.client.get(
                f"/api/v1/prescriptions/{items[0]['id']}", headers=headers
            )
            return dict(await detail.json())
        await asyncio.sleep(0.05)
    raise AssertionError("not reviewed in time")


async def test_readiness_reports_a_broker_outage_but_stays_ready(make_hub: HubFactory) -> None:
    hub = await make_hub(broker_url="redis://127.0.0.1:9/0")
    ready = await hub.client.get("/readyz")
    assert ready.status == 200  # the intake still stores; the sweep queues checks later
    checks = (await ready.json())["checks"]
    assert (checks["database"], checks["broker"]) == ("ok", "unavailable")


async def _states(hub: Hub) -> dict[uuid.UUID, str]:
    async with hub.db.sessions() as session:
        rows = await session.execute(select(Prescription.id, Prescription.state))
        return dict(rows.all())


async def test_a_newrx_that_cannot_be_checked_does_not_hold_up_the_others(
    make_hub: HubFactory, worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """Issue 12: one crafted or unreadable prescription among twenty ordinary ones: all are
    checked promptly, the one that cannot be is parked for a pharmacist, none is retried
    for ever."""
    hub = await make_hub()
    token = await hub.sender_token()
    messages = [_newrx(**someone(n)) for n in range(20)]
    messages += [_newrx(patient_last=EXPANDING), _newrx(**someone(20))]
    # sent together, stored and queued together: one chunk for the worker
    replies = await asyncio.gather(*(post_script(hub, m, token) for m in messages))
    assert [b"<Status>" in await reply.read() for reply in replies] == [True] * len(messages)
    poison = await _prescription_of(hub, messages[-1])
    await make_unreadable(hub, poison)
    worker()
    deadline = time.monotonic() + 30
    while set((states := await _states(hub)).values()) != {"awaiting_review"}:
        assert time.monotonic() < deadline, Counter(states.values())
        await asyncio.sleep(0.2)
    await assert_parked(hub, poison)
    async with hub.db.sessions() as session:
        codes = await session.execute(
            select(Finding.prescription_id, Finding.code).where(Finding.prescription_id != poison)
        )
        assert sorted(code for _, code in codes) == ["NPI_INVALID"] * 21
        longest = await session.scalar(select(func.max(func.length(PatientProfile.last_name_key))))
    assert longest <= PatientProfile.__table__.c.last_name_key.type.length


async def _prescription_of(hub: Hub, message: bytes) -> uuid.UUID:
    message_id = message.split(b"<MessageID>")[1].split(b"<")[0].decode()
    async with hub.db.sessions() as session:
        found = await session.scalar(
            select(Prescription.id).where(Prescription.message_id == message_id)
        )
    assert found is not None
    return found
