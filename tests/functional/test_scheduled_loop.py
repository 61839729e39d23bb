"""The hub's own loop of the scheduled notices (the embedded mode: ``make run``, the tests):
with a short interval, a prescription linked to a reachable profile is announced without
anyone running the job by hand, once, and the lease row says who ran it. Synthetic data."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import select

from eprescribe.notifications import EventKind
from server.schedule import JOB
from server.schedule.models import JobLease
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    Team,
    approved,
    checker,
    prescriber,
    products,
    team,
)
from tests.functional.test_notification_triggers import notices, patient_of, reachable


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, schedule_interval=0.3)


async def test_the_hubs_own_loop_runs_the_schedule(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
) -> None:
    first, _ = await approved(hub, checker, team)  # the profile is made by its checks
    await reachable(hub, team.tom, await patient_of(hub, first))
    rx_id, _ = await approved(hub, checker, team)

    async def announced() -> list[object]:
        rows = await notices(hub, EventKind.PRESCRIPTION_RECEIVED)
        return [r for r in rows if r.subject_id == rx_id]

    for _ in range(100):
        if await announced():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # more runs meanwhile: still one
    assert len(await announced()) == 1
    async with hub.db.sessions() as session:
        lease = await session.scalar(
            select(JobLease).where(JobLease.name == f"{JOB}.prescription_received")
        )
    assert lease is not None
    assert lease.last_run_at is not None
    status = await (await hub.client.get("/readyz")).json()
    assert "scheduled_notices" in str(status)
