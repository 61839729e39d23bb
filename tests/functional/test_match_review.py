"""The match-review queue: prescriptions whose patient matched weakly or ambiguously, with
their candidates; a pharmacist links one to a candidate or to a new profile, and the
prescription is checked again with the profile's whole picture."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from server.audit.models import AuditEvent
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.check_helpers import someone
from tests.functional.match_review_helpers import call, pharmacist, review_queue, weak
from tests.functional.test_verification import detail
from tests.functional.verification_helpers import reviewable, staff


async def test_a_weak_match_is_queued_with_its_candidate_and_why(
    hub: Hub, checker: Checker
) -> None:
    alice = await pharmacist(hub)
    patient, rx_id = await weak(hub, checker, alice, 1)
    tech = await staff(hub, "terry", role="technician")
    listed = await review_queue(hub, tech)
    [item] = listed["items"]
    assert listed["next"] is None
    assert item["prescription_id"] == str(rx_id)
    assert item["match"] == "weak"
    [candidate] = item["candidates"]
    assert candidate["patient_id"] == patient
    assert candidate["differ"] == ["gender"]
    assert candidate["agree"] == ["last_name", "first_name", "date_of_birth", "postal_code"]
    async with hub.db.sessions() as session:
        seen = (
            await session.scalars(
                select(AuditEvent.detail).where(AuditEvent.action == "patient.match.list")
            )
        ).one()
    assert seen["prescriptions"] == [str(rx_id)]
    assert seen["patients"] == [patient]


async def test_the_queue_is_oldest_first_and_paged_by_cursor(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    made = [(await weak(hub, checker, alice, n))[1] for n in (1, 2, 3)]
    first = await review_queue(hub, alice, limit="2")
    assert [i["prescription_id"] for i in first["items"]] == [str(r) for r in made[:2]]
    second = await review_queue(hub, alice, limit="2", after=first["next"])
    assert [i["prescription_id"] for i in second["items"]] == [str(made[2])]
    assert second["next"] is None
    status, _body = await call(hub, "GET", "/api/v1/match-review?after=nonsense", alice)
    assert status == 400


async def test_linking_checks_the_prescription_again_with_the_profile(
    hub: Hub, checker: Checker
) -> None:
    alice = await pharmacist(hub)
    patient, rx_id = await weak(hub, checker, alice, 1)
    status, body = await call(
        hub, "POST", f"/api/v1/match-review/{rx_id}/link", alice, {"patient_id": patient}
    )
    assert status == 200, body
    assert body["patient_id"] == patient
    assert body["created"] is False
    assert body["rechecking"] >= 1
    rx = await detail(hub, alice, rx_id)
    assert rx["patient_id"] == patient
    assert rx["findings_stale"] is True
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    rx = await detail(hub, alice, rx_id)
    assert rx["findings_stale"] is False
    assert "PATIENT_MATCH_REVIEW" not in {f["code"] for f in rx["findings"]}
    # the other lisinopril of the profile is now beside it
    assert "THERAPEUTIC_DUPLICATION" in {f["code"] for f in rx["findings"]}
    assert (await review_queue(hub, alice))["items"] == []
    status, body = await call(
        hub, "POST", f"/api/v1/match-review/{rx_id}/link", alice, {"patient_id": patient}
    )
    assert (status, body["code"]) == (409, "already_linked")
    async with hub.db.sessions() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(
                    AuditEvent.action == "patient.match.link", AuditEvent.resource_id == str(rx_id)
                )
            )
        )
    assert outcomes == ["success", "refused"]


async def test_creating_a_profile_from_the_prescription(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    patient, rx_id = await weak(hub, checker, alice, 1)
    status, body = await call(hub, "POST", f"/api/v1/match-review/{rx_id}/create", alice)
    assert status == 200, body
    assert body["created"] is True
    assert body["patient_id"] != patient
    rx = await detail(hub, alice, rx_id)
    assert rx["patient_id"] == body["patient_id"]
    # the next prescription of that patient (gender F) matches the new profile exactly
    again = await reviewable(hub, checker, **someone(1), gender="F")
    assert (await detail(hub, alice, again))["patient_id"] == body["patient_id"]


async def test_refusals_of_linking(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    tech = await staff(hub, "terry", role="technician")
    patient, rx_id = await weak(hub, checker, alice, 1)
    other = await reviewable(hub, checker, **someone(2))
    stranger = (await detail(hub, alice, other))["patient_id"]
    url = f"/api/v1/match-review/{rx_id}/link"
    # technicians read, only pharmacists act
    status, body = await call(hub, "POST", url, tech, {"patient_id": patient})
    assert status == 403
    # not a candidate: another name
    status, body = await call(hub, "POST", url, alice, {"patient_id": stranger})
    assert (status, body["code"]) == (422, "not_a_candidate")
    # wrong types
    status, body = await call(hub, "POST", url, alice, {"patient_id": 5})
    assert status == 400
    status, body = await call(hub, "POST", url, alice, {"patient_id": patient, "x": 1})
    assert status == 400
    # an unknown profile, a prescription not in the queue
    status, body = await call(hub, "POST", url, alice, {"patient_id": str(rx_id)})
    assert (status, body["code"]) == (404, "not_found")
    status, body = await call(hub, "POST", f"/api/v1/match-review/{other}/create", alice)
    assert (status, body["code"]) == (409, "already_linked")
    status, body = await call(hub, "POST", "/api/v1/match-review/nope/create", alice)
    assert status == 404


async def test_another_pharmacy_sees_nothing_and_its_misses_are_audited(
    hub: Hub, checker: Checker
) -> None:
    alice = await pharmacist(hub)
    patient, rx_id = await weak(hub, checker, alice, 1)
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    assert (await review_queue(hub, mallory))["items"] == []
    url = f"/api/v1/match-review/{rx_id}/link"
    status, body = await call(hub, "POST", url, mallory, {"patient_id": patient})
    assert (status, body["code"]) == (404, "not_found")
    status, body = await call(hub, "POST", f"/api/v1/match-review/{rx_id}/create", mallory)
    assert (status, body["code"]) == (404, "not_found")
    assert "Testperson" not in str(body)
    async with hub.db.sessions() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(
                    AuditEvent.action.like("patient.match.%"),
                    AuditEvent.resource_id == str(rx_id),
                )
            )
        )
    assert outcomes == ["not_found", "not_found"]
    assert (await detail(hub, alice, rx_id))["patient_id"] is None


async def test_an_ambiguous_match_then_a_merge_makes_it_exact(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    _, first = await weak(hub, checker, alice, 1)
    second = await reviewable(hub, checker, **someone(1), gender="F")
    # two profiles made for one person (F): the next script matches both equally well
    made = []
    for rx_id in (first, second):
        status, body = await call(hub, "POST", f"/api/v1/match-review/{rx_id}/create", alice)
        assert status == 200, body
        made.append(body["patient_id"])
    third = await reviewable(hub, checker, **someone(1), gender="F")
    [item] = (await review_queue(hub, alice))["items"]
    assert item["prescription_id"] == str(third)
    assert item["match"] == "ambiguous"
    exact = {c["patient_id"] for c in item["candidates"] if not c["differ"]}
    assert exact == set(made)
    # merged, the two are one: the queued script links to the survivor, the next one too
    status, body = await call(
        hub, "POST", f"/api/v1/patients/{made[0]}/merge", alice, {"merged_id": made[1]}
    )
    assert status == 200, body
    [item] = (await review_queue(hub, alice))["items"]
    assert made[1] not in {c["patient_id"] for c in item["candidates"]}
    status, body = await call(
        hub, "POST", f"/api/v1/match-review/{third}/link", alice, {"patient_id": made[1]}
    )
    assert (status, body["code"]) == (409, "profile_merged")
    status, body = await call(
        hub, "POST", f"/api/v1/match-review/{third}/link", alice, {"patient_id": made[0]}
    )
    assert status == 200, body
    fourth = await reviewable(hub, checker, **someone(1), gender="F")
    assert (await detail(hub, alice, fourth))["patient_id"] == made[0]
