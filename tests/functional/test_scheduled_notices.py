"""The scheduled notices on the real app (prescription received, refill due and its renewal
variant, not collected), each written once however often the job runs and on however many
runners; the patient's quiet hours, consent and the pharmacy's switch respected; the lease
that lets one runner in; shipping a ready fill with its tracking number (delivered to a real
SMTP server, aiosmtpd); the med sync proposal against a hand-computed case. Synthetic data
only."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from eprescribe.notifications import EventKind, send_at
from server.db.models import utcnow
from server.dispensing.models import Fill
from server.schedule.models import NoticeOccasion
from server.schedule.runner import Schedule
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.fill_helpers import hand_over, ok
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    HAND_OVER,
    Team,
    approved,
    checker,
    prescriber,
    products,
    team,
    to_ready,
)
from tests.functional.test_notification_triggers import (
    EMAIL,
    NEW_YORK,
    minimum_necessary,
    notices,
    patient_of,
    reachable,
)
from tests.functional.test_notifications_outbox import Mailbox, mailbox  # noqa: F401 (fixture)
from tests.functional.test_patient_contacts import call
from tests.functional.verification_helpers import staff
from tests.support.smtp import emailed

K = EventKind


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the hub's own loop of the schedule stays out of the way (the tests run it by hand,
    # at the moments they choose): its first run would come after an hour
    return dataclasses.replace(
        settings,
        outbox_timeout=2.0,
        outbox_retry_first=0.02,
        outbox_retry_max=0.05,
        schedule_interval=3600.0,
    )


@pytest.fixture
async def schedule(hub: Hub, settings: Settings) -> AsyncIterator[Schedule]:
    made = await asyncio.to_thread(Schedule.from_settings, settings)
    yield made
    await asyncio.to_thread(made.close)


async def run(schedule: Schedule, now: dt.datetime) -> dict[str, int]:
    ran = await asyncio.to_thread(schedule.run, now)
    return ran.counts


async def delivered_fill(hub: Hub, team: Team, rx_id: uuid.UUID) -> uuid.UUID:  # noqa: F811
    fill_id = await to_ready(hub, team, rx_id)
    await hand_over(hub, team.tom, fill_id, HAND_OVER)
    return uuid.UUID(fill_id)


async def ended_at(hub: Hub, fill_id: uuid.UUID) -> dt.datetime:
    async with hub.db.sessions() as session:
        found = await session.scalar(select(Fill.ended_at).where(Fill.id == fill_id))
    assert found is not None
    return found


async def occasions(hub: Hub) -> int:
    async with hub.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(NoticeOccasion)) or 0)


def morning(now: dt.datetime) -> dt.datetime:
    """A moment in New York's waking hours on ``now``'s day (quiet hours do not move it)."""
    return dt.datetime.combine(now.date(), dt.time(16), dt.UTC)


async def test_each_scheduled_notice_is_written_once_however_often_the_job_runs(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    schedule: Schedule,
) -> None:
    rx_id, _ = await approved(hub, checker, team, refills="2")
    patient = await patient_of(hub, rx_id)
    await reachable(hub, team.tom, patient)
    now = morning(utcnow())

    # received: the prescription is linked to the profile and past its checks
    assert (await run(schedule, now))["prescription_received"] == 1
    assert (await run(schedule, now))["prescription_received"] == 0
    (received,) = await notices(hub, K.PRESCRIPTION_RECEIVED)
    assert (received.subject_id, received.subject) == (rx_id, "We received your prescription")
    minimum_necessary(received)

    # not collected: ready for 5 days (TELEPHARM_NOT_COLLECTED_DAYS), not before
    fill_id = await to_ready(hub, team, rx_id)
    async with hub.db.sessions() as session:
        ready_at = await session.scalar(select(Fill.ready_at).where(Fill.id == uuid.UUID(fill_id)))
    assert ready_at is not None
    assert (await run(schedule, morning(ready_at + dt.timedelta(days=4))))[
        "not_collected_reminder"
    ] == 0
    later = morning(ready_at + dt.timedelta(days=6))
    assert (await run(schedule, later))["not_collected_reminder"] == 1
    assert (await run(schedule, later))["not_collected_reminder"] == 0
    (reminder,) = await notices(hub, K.NOT_COLLECTED)
    pickup_by = (ready_at + dt.timedelta(days=14)).astimezone(NEW_YORK)
    assert f"pick up by {pickup_by:%B} {pickup_by.day}" not in reminder.body  # the email says:
    assert f"If it is not picked up by {pickup_by:%B} {pickup_by.day}" in reminder.body
    minimum_necessary(reminder)

    # refill due: 30 days' supply handed over, reminded 7 days before it runs out
    await hand_over(hub, team.tom, fill_id, HAND_OVER)
    handed = await ended_at(hub, uuid.UUID(fill_id))
    runs_out = handed.date() + dt.timedelta(days=30)
    assert (await run(schedule, morning(handed + dt.timedelta(days=22))))["refill_due"] == 0
    due = morning(handed + dt.timedelta(days=23))
    assert (await run(schedule, due))["refill_due"] == 1
    assert (await run(schedule, due))["refill_due"] == 0
    (refill,) = await notices(hub, K.REFILL_DUE)
    assert refill.subject_id == uuid.UUID(fill_id)
    assert refill.subject == "Your refill is due"
    assert f"due on {runs_out:%B} {runs_out.day}." in refill.body
    minimum_necessary(refill)
    assert await occasions(hub) == 3


async def test_no_refill_left_says_the_pharmacy_will_ask_the_prescriber(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    schedule: Schedule,
) -> None:
    rx_id, _ = await approved(hub, checker, team, refills="0")
    await reachable(hub, team.tom, await patient_of(hub, rx_id))
    fill_id = await delivered_fill(hub, team, rx_id)
    handed = await ended_at(hub, fill_id)
    assert (await run(schedule, morning(handed + dt.timedelta(days=25))))["refill_due"] == 1
    (renewal,) = await notices(hub, K.REFILL_DUE)
    assert renewal.subject == "Your prescription needs renewing"
    assert "We will ask your prescriber to renew it" in renewal.body
    minimum_necessary(renewal)


async def test_quiet_hours_consent_and_the_pharmacys_switch(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    schedule: Schedule,
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    await reachable(hub, team.tom, patient)
    # the clock at 23:30 in New York: due at 08:00 there
    night = dt.datetime.combine(utcnow().date(), dt.time(23, 30), NEW_YORK).astimezone(dt.UTC)
    if night > utcnow():
        night -= dt.timedelta(days=1)
    assert (await run(schedule, night))["prescription_received"] == 1
    (row,) = await notices(hub, K.PRESCRIPTION_RECEIVED)
    assert row.next_attempt_at == send_at(night, NEW_YORK)
    assert row.next_attempt_at.astimezone(NEW_YORK).time() == dt.time(8)

    # the patient switched refill reminders off by email: the occasion is spent, nothing sent
    switch = {"switches": [{"kind": "refill_due", "channel": "email", "allowed": False}]}
    assert (await call(hub, "PUT", f"/api/v1/patients/{patient}/consent", team.tom, switch))[
        0
    ] == 200
    fill_id = await delivered_fill(hub, team, rx_id)
    due = morning(await ended_at(hub, fill_id) + dt.timedelta(days=24))
    assert (await run(schedule, due))["refill_due"] == 0
    assert await notices(hub, K.REFILL_DUE) == []

    # the pharmacy switched "received" off: a new prescription tells nobody
    status, body = await call(
        hub,
        "PUT",
        "/api/v1/notifications/settings",
        team.alice,
        {"switches": [{"kind": "prescription_received", "enabled": False}]},
    )
    assert (status, body["enabled"]["prescription_received"]) == (200, False), body
    assert body["enabled"]["refill_due"] is True
    status, body = await call(hub, "GET", "/api/v1/notifications/settings", team.alice)
    assert body["enabled"]["prescription_received"] is False
    bad = {"switches": [{"kind": "sign_in_code", "enabled": False}]}
    assert (await call(hub, "PUT", "/api/v1/notifications/settings", team.alice, bad))[0] == 422
    assert (await call(hub, "GET", "/api/v1/notifications/settings", team.tom))[0] == 403
    await approved(hub, checker, team)
    assert (await run(schedule, morning(utcnow())))["prescription_received"] == 0
    assert len(await notices(hub, K.PRESCRIPTION_RECEIVED)) == 1


async def test_two_runners_one_lease_one_run_an_interval(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    settings: Settings,
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    await reachable(hub, team.tom, await patient_of(hub, rx_id))
    runners = [await asyncio.to_thread(Schedule.from_settings, settings) for _ in range(2)]
    now = morning(utcnow())
    start = threading.Barrier(2)
    results: list[Any] = [None, None]

    def race(i: int) -> None:
        start.wait()
        results[i] = runners[i].run_due(now)

    try:
        await asyncio.gather(*(asyncio.to_thread(race, i) for i in range(2)))
        ran = [r for r in results if r is not None]
        # each kind's lease taken by one runner; the other found it held
        kinds = [kind for r in ran for kind in r.counts]
        assert sorted(kinds) == ["not_collected_reminder", "prescription_received", "refill_due"]
        assert sum(r.counts.get("prescription_received", 0) for r in ran) == 1
        # within the interval nobody runs it again; after it, one does (and writes nothing new)
        soon = now + dt.timedelta(seconds=settings.schedule_interval / 2)
        assert await asyncio.to_thread(runners[0].run_due, soon) is None
        assert await asyncio.to_thread(runners[1].run_due, soon) is None
        after = now + dt.timedelta(seconds=settings.schedule_interval + 1)
        again = await asyncio.to_thread(runners[1].run_due, after)
        assert again is not None
        assert again.written == []
        # the job itself, run by both at once without the lease: still one notice
        rx2, _ = await approved(hub, checker, team)
        start.reset()

        def both(i: int) -> None:
            start.wait()
            results[i] = runners[i].run(now)

        await asyncio.gather(*(asyncio.to_thread(both, i) for i in range(2)))
    finally:
        for runner in runners:
            await asyncio.to_thread(runner.close)
    assert sum(r.counts["prescription_received"] for r in results) == 1
    assert {n.subject_id for n in await notices(hub, K.PRESCRIPTION_RECEIVED)} == {rx_id, rx2}


async def test_a_ready_fill_shipped_to_a_delivery_patient_sends_the_tracking_link(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    settings: Settings,
    schedule: Schedule,
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    await reachable(hub, team.tom, patient)
    fill_id = await to_ready(hub, team, rx_id)
    url = f"/api/v1/fills/{fill_id}/shipment"
    ups = {"carrier": "ups", "tracking_number": "1Z 999 AA1 01 2345 6784"}

    # the patient chose pick-up (not delivery): refused
    status, body = await call(hub, "POST", url, team.tom, ups)
    assert (status, body["code"]) == (409, "not_delivery"), body
    prefs = {"time_zone": NEW_YORK.key, "preferred_channel": "email",
             "pickup_or_delivery": "delivery"}  # fmt: skip
    assert (await call(hub, "PUT", f"/api/v1/patients/{patient}/preferences", team.tom, prefs))[
        0
    ] == 200
    # a tracking number not of the carrier's form, an unknown carrier: 422
    for bad in ({"carrier": "ups", "tracking_number": "12345"},
                {"carrier": "pigeon", "tracking_number": "1Z9999AA10123456784"}):  # fmt: skip
        status, body = await call(hub, "POST", url, team.tom, bad)
        assert status == 422, body
    # another pharmacy's staff: 404
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    for method, path in (("POST", url), ("GET", url), ("POST", f"{url}/delivered")):
        status, body = await call(hub, method, path, mallory, ups if method == "POST" else None)
        assert (status, body["code"]) == (404, "not_found"), (path, body)
    assert (await call(hub, "GET", url, team.tom))[0] == 404  # not shipped yet
    assert (await call(hub, "POST", f"{url}/delivered", team.tom))[0] == 409

    status, body = await call(hub, "POST", url, team.tom, ups)
    assert status == 201, body
    assert (body["state"], body["carrier"], body["tracking_number"]) == (
        "shipped", "ups", "1Z999AA10123456784",
    )  # fmt: skip
    assert body["tracking_url"] == "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    status, again = await call(hub, "POST", url, team.tom, ups)
    assert (status, again["code"]) == (409, "already_shipped")
    (shipped,) = await notices(hub, K.SHIPPED)
    assert (shipped.subject_id, shipped.subject) == (uuid.UUID(fill_id), "Your order has shipped")
    assert "1Z999AA10123456784" in shipped.body
    assert body["tracking_url"] in shipped.body
    minimum_necessary(shipped)
    # out for delivery: no not-collected reminder, no return to stock
    async with hub.db.sessions() as session:
        ready_at = await session.scalar(select(Fill.ready_at).where(Fill.id == uuid.UUID(fill_id)))
    assert ready_at is not None
    assert (await run(schedule, morning(ready_at + dt.timedelta(days=6))))[
        "not_collected_reminder"
    ] == 0
    assert await hub.client.app[_fills_key()].sweep(ready_at + dt.timedelta(days=20)) == 0

    # the email reaches a real SMTP server with the tracking link
    mail = await emailed(hub.db, settings, mailbox, shipped.id, "Your order has shipped")
    assert mail["To"] == EMAIL
    assert body["tracking_url"] in mail.get_body(("plain",)).get_content()

    status, done = await call(hub, "POST", f"{url}/delivered", team.tom)
    assert (status, done["state"]) == (200, "delivered")
    assert done["delivered_at"] is not None
    assert (await call(hub, "GET", url, team.tom))[1]["state"] == "delivered"
    assert (await call(hub, "POST", f"{url}/delivered", team.tom))[0] == 409


async def test_a_fill_not_ready_does_not_ship(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    prefs = {"pickup_or_delivery": "delivery"}
    assert (await call(hub, "PUT", f"/api/v1/patients/{patient}/preferences", team.tom, prefs))[
        0
    ] == 200
    fill_id = (await ok(_start(hub, team.tom, rx_id)))["id"]
    ups = {"carrier": "ups", "tracking_number": "1Z999AA10123456784"}
    status, body = await call(hub, "POST", f"/api/v1/fills/{fill_id}/shipment", team.tom, ups)
    assert (status, body["code"]) == (409, "wrong_state"), body


async def test_med_sync_proposes_the_hand_computed_short_fill_and_records_its_acceptance(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
) -> None:
    # two chronic medications, 60 tablets for 30 days (2 a day), refills authorised:
    # A handed over on 1 March (runs out 31 March), B on 11 March (runs out 10 April).
    # Anchor 31 March: B needs 20 days to 30 April; anchor 10 April: A needs 10 days
    # (31 March to 10 April), B none: 10 short days, the fewest. A's short fill: 20 tablets.
    a, _ = await approved(hub, checker, team, refills="3")
    b, _ = await approved(hub, checker, team, refills="3")
    patient = await patient_of(hub, a)
    assert await patient_of(hub, b) == patient
    url = f"/api/v1/patients/{patient}/med-sync"
    status, body = await call(hub, "GET", url, team.alice)
    assert (status, body["chronic"], body["proposal"]) == (200, 0, None), body
    assert (await call(hub, "POST", url, team.alice, {}))[0] == 409

    for rx_id, day in ((a, dt.date(2026, 3, 1)), (b, dt.date(2026, 3, 11))):
        fill_id = await delivered_fill(hub, team, rx_id)
        async with hub.db.transaction() as session:
            await session.execute(
                update(Fill)
                .where(Fill.id == fill_id)
                .values(ended_at=dt.datetime.combine(day, dt.time(15), dt.UTC))
            )
    status, body = await call(hub, "GET", url, team.alice)
    assert status == 200, body
    proposal = body["proposal"]
    assert (body["chronic"], proposal["anchor"], proposal["cycle_days"]) == (2, "2026-04-10", 30)
    assert proposal["short_days"] == 10
    fills = {f["prescription_id"]: f for f in proposal["fills"]}
    assert {k: fills[str(a)][k] for k in ("starts_on", "days_supply", "quantity", "sync_on")} == {
        "starts_on": "2026-03-31", "days_supply": 10, "quantity": "20", "sync_on": "2026-04-10",
    }  # fmt: skip
    assert (fills[str(b)]["days_supply"], fills[str(b)]["stays_aligned"]) == (0, True)
    assert body["accepted"] is None

    # a technician may not; another pharmacy's pharmacist finds no such patient
    assert (await call(hub, "GET", url, team.tom))[0] == 403
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    assert (await call(hub, "GET", url, mallory))[0] == 404
    assert (await call(hub, "POST", url, mallory, {}))[0] == 404

    status, body = await call(hub, "POST", url, team.alice, {})
    assert status == 200, body
    accepted = body["accepted"]
    assert (accepted["anchor"], accepted["cycle_days"]) == ("2026-04-10", 30)
    assert accepted["fills"] == proposal["fills"]
    assert (await call(hub, "GET", url, team.alice))[1]["accepted"]["anchor"] == "2026-04-10"


def _fills_key() -> Any:
    from server.dispensing.store import FILLS

    return FILLS


async def _start(hub: Hub, token: str, rx_id: uuid.UUID) -> Any:
    from tests.functional.fill_helpers import start

    return await start(hub, token, rx_id)
