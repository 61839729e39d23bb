"""The queue that scales with the work: each pharmacy's revision counter, counted up by every
writer of what a queue shows and by nothing rolled back or refused, and the keyset pages of
the queue and the consult list (stable order, no row twice or missed while rows change)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from eprescribe import prescriptions as rules
from eprescribe.ncpdp import Address, DateValue, Name, Patient
from server.admin.models import Pharmacy
from server.auth.models import User
from server.patients.models import PatientProfile
from server.prescriptions import revisions, store
from server.prescriptions.models import Prescription, QueueRevision
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.consult_helpers import patient, the_pharmacy
from tests.functional.verification_helpers import bearer, receive, reviewable, staff


async def _pharmacy_id(hub: Hub, ncpdpid: str = "1234567") -> uuid.UUID:
    async with hub.db.sessions() as session:
        found = await session.scalar(select(Pharmacy.id).where(Pharmacy.ncpdpid == ncpdpid))
    assert found is not None
    return found


async def _counter(hub: Hub, pharmacy_id: uuid.UUID) -> int:
    async with hub.db.sessions() as session:
        return int(
            await session.scalar(
                select(func.sum(QueueRevision.revision)).where(
                    QueueRevision.pharmacy_id == pharmacy_id
                )
            )
            or 0
        )


async def _token(hub: Hub, token: str) -> str:
    response = await hub.client.get("/api/v1/queue/revision", headers=bearer(token))
    assert response.status == 200
    return str((await response.json())["revision"])


async def test_every_writer_counts_the_revision_up_and_nothing_else_does(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await receive(hub)  # the intake's batched writer
    ours = await _pharmacy_id(hub)
    await hub.pharmacy(**OTHER_PHARMACY)
    theirs = await _pharmacy_id(hub, OTHER_PHARMACY["ncpdpid"])
    token = await staff(hub, "alice")
    received = await _counter(hub, ours)
    assert received >= 1
    before = await _token(hub, token)
    assert await _token(hub, token) == before  # polling changes nothing

    steps: list[int] = [received]

    async def moved() -> None:
        now = await _counter(hub, ours)
        assert now > steps[-1]
        steps.append(now)

    # the checks: received -> checking -> awaiting_review, with findings
    assert checker.check(rx_id) is not None
    await moved()
    claim = await hub.client.post(f"/api/v1/prescriptions/{rx_id}/claim", headers=bearer(token))
    assert claim.status == 200, await claim.text()
    await moved()
    assert await _token(hub, token) not in (before,)
    # a note is not in any queue: nothing counted
    note = await hub.client.post(
        f"/api/v1/prescriptions/{rx_id}/notes", json={"text": "Called."}, headers=bearer(token)
    )
    assert note.status == 200, await note.text()
    assert await _counter(hub, ours) == steps[-1]
    release = await hub.client.post(f"/api/v1/prescriptions/{rx_id}/release", headers=bearer(token))
    assert release.status == 200, await release.text()
    await moved()
    # a refusal (releasing what is not claimed) is audited, counts nothing
    refused = await hub.client.post(f"/api/v1/prescriptions/{rx_id}/release", headers=bearer(token))
    assert refused.status == 409
    assert await _counter(hub, ours) == steps[-1]
    # the patient's picture changes (a staff allergy): the queue shows the checks are stale
    async with hub.db.sessions() as session:
        patient_id = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    assert patient_id is not None
    allergy = await hub.client.post(
        f"/api/v1/patients/{patient_id}/allergies",
        json={"allergy": "penicillin"},
        headers=bearer(token),
    )
    assert allergy.status in (200, 201), await allergy.text()
    await moved()
    # another pharmacy's counter never moved
    assert await _counter(hub, theirs) == 0


async def test_a_unit_of_work_rolled_back_counts_nothing(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker)
    ours = await _pharmacy_id(hub)
    await staff(hub, "alice")
    async with hub.db.sessions() as session:
        alice = await session.scalar(select(User.id).where(User.username == "alice"))
    before = await _counter(hub, ours)

    def claim_then_fail(session: object) -> None:
        assert isinstance(session, store.Session)
        rx = store.load(session, [rx_id])[rx_id]
        reviewer = rules.Reviewer(str(alice))
        outcome = rules.claim(rx, reviewer, dt.datetime.now(dt.UTC))
        store.save(session, [store.Change(rx, outcome)], [])
        raise RuntimeError("the unit of work fails after the write")

    with pytest.raises(RuntimeError):
        async with hub.db.transaction() as session:
            await session.run_sync(claim_then_fail)
    assert await _counter(hub, ours) == before
    async with hub.db.sessions() as session:
        state = await session.scalar(select(Prescription.state).where(Prescription.id == rx_id))
    assert state == "awaiting_review"
    # a session used again after its rollback counts its next commit once
    async with hub.db.sessions() as session:
        await session.begin()
        await session.run_sync(lambda s: revisions.touch(s, [ours]))
        await session.rollback()
        async with session.begin():
            await session.run_sync(lambda s: revisions.touch(s, [ours, ours]))
    assert await _counter(hub, ours) == before + 1


async def test_a_running_claim_running_out_changes_the_revision(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker)
    token = await staff(hub, "alice")
    claim = await hub.client.post(f"/api/v1/prescriptions/{rx_id}/claim", headers=bearer(token))
    assert claim.status == 200
    running = await _token(hub, token)
    async with hub.db.transaction() as session:
        rx = await session.get(Prescription, rx_id)
        assert rx is not None
        rx.claimed_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # time passes
    assert await _token(hub, token) != running


async def _page(hub: Hub, token: str, **params: str) -> dict[str, object]:
    response = await hub.client.get("/api/v1/prescriptions", params=params, headers=bearer(token))
    assert response.status == 200, await response.text()
    body: dict[str, object] = await response.json()
    return body


async def test_keyset_pages_keep_their_order_while_rows_arrive_and_move(
    hub: Hub, checker: Checker
) -> None:
    first = [await receive(hub, urgent=(i % 3 == 0)) for i in range(7)]
    token = await staff(hub, "alice")
    whole = await _page(hub, token, state="received", limit="50")
    order = [item["id"] for item in whole["items"]]  # type: ignore[index]
    assert sorted(order) == sorted(str(i) for i in first)
    urgent = [str(i) for n, i in enumerate(first) if n % 3 == 0]
    assert order[: len(urgent)] == urgent  # urgent first, then oldest first
    assert whole["next_cursor"] is None

    seen: list[str] = []
    cursor: str | None = None
    arrived: list[uuid.UUID] = []
    for turn in range(20):
        params = {"state": "received", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        page = await _page(hub, token, **params)
        seen.extend(item["id"] for item in page["items"])  # type: ignore[attr-defined, union-attr]
        cursor = page["next_cursor"]  # type: ignore[assignment]
        if turn == 1:
            # meanwhile: one arrives (urgent: before the page's position, so not listed), one
            # arrives routine (after it: listed), and a listed one moves on to the checks
            arrived.append(await receive(hub, urgent=True))
            arrived.append(await receive(hub))
            assert checker.check(uuid.UUID(seen[0])) is not None
        if cursor is None:
            break
    assert len(seen) == len(set(seen))  # none twice
    assert seen[: len(order)] == order  # none missed, in the order of the first read
    assert seen[len(order) :] == [str(arrived[1])]


async def test_a_cursor_is_the_apis_own(hub: Hub) -> None:
    await receive(hub)
    token = await staff(hub, "alice")
    for params in ({"cursor": "not-a-cursor"}, {"cursor": "AAAA"}):
        response = await hub.client.get(
            "/api/v1/prescriptions", params=params, headers=bearer(token)
        )
        assert response.status == 400
    page = await _page(hub, token, limit="1")
    cursor = page["next_cursor"]
    assert isinstance(cursor, str)
    both = await hub.client.get(
        "/api/v1/prescriptions", params={"cursor": cursor, "offset": "1"}, headers=bearer(token)
    )
    assert both.status == 400
    # offset still pages as before (older clients)
    offset = await _page(hub, token, limit="1", offset="1")
    assert offset["offset"] == 1


async def test_the_consult_list_pages_newest_first_while_consults_are_added(hub: Hub) -> None:
    profile = await patient(hub)
    token = await staff(hub, "alice")

    async def start() -> str:
        created = await hub.client.post(
            "/api/v1/consults", json={"patient_id": profile}, headers=bearer(token)
        )
        assert created.status == 200, await created.text()
        return str((await created.json())["id"])

    made = [await start() for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    for turn in range(10):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await hub.client.get("/api/v1/consults", params=params, headers=bearer(token))
        assert response.status == 200, await response.text()
        page = await response.json()
        seen.extend(c["id"] for c in page["items"])
        cursor = page["next_cursor"]
        if turn == 0:
            await start()  # newer than the position reached: on no later page
        if cursor is None:
            break
    assert seen == list(reversed(made))
    bad = await hub.client.get("/api/v1/consults", params={"cursor": "x"}, headers=bearer(token))
    assert bad.status == 400


async def test_the_patient_search_pages_by_name_without_repeats(hub: Hub) -> None:
    await the_pharmacy(hub)
    pharmacy = await _pharmacy_id(hub)
    names = [("doe", "ann"), ("doe", "ann"), ("doe", "bob"), ("doel", "cy"), ("dof", "al")]
    async with hub.db.transaction() as session:
        for last, first in names:
            session.add(
                PatientProfile(
                    pharmacy_id=pharmacy,
                    last_name_key=last,
                    first_name_key=first,
                    date_of_birth=dt.date(1970, 1, 2),
                    gender="F",
                    postal_code="00000",
                    demographics=Patient(
                        kind="human",
                        name=Name(last=last, first=first),
                        gender="F",
                        date_of_birth=DateValue(dt.date(1970, 1, 2)),
                        address=Address("1 Test Street", "Testville", "CA", "00000", "US"),
                    ),
                )
            )
    token = await staff(hub, "alice")
    seen: list[str] = []
    after: str | None = None
    for _ in range(10):
        params = {"name": "Doe", "limit": "1", **({"after": after} if after else {})}
        response = await hub.client.get("/api/v1/patients", params=params, headers=bearer(token))
        assert response.status == 200, await response.text()
        page = await response.json()
        seen.extend(p["id"] for p in page["items"])
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 4  # doe ann twice, doe bob, doel cy: not dof
