"""Merging two profiles of a pharmacy, and undoing it exactly: every row of the merged profile
moves to the survivor (the survivor's one-per-profile rows kept), the merged profile is kept,
marked, and still matches as the survivor; the open prescriptions of both are checked again.
Never automatic; refusals say why; every merge and unmerge is audited with the counts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from server.audit.models import AuditEvent
from server.patients.models import PatientContact, PatientPreferences, PatientProfile
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.check_helpers import someone
from tests.functional.match_review_helpers import call, pharmacist, profile_of
from tests.functional.test_verification import detail
from tests.functional.verification_helpers import reviewable, staff

SERTRALINE = "sertraline 50 MG Oral Tablet"
FLUOXETINE = "fluoxetine 20 MG Oral Capsule"


async def _merge(hub: Hub, token: str, survivor: object, merged: object) -> tuple[int, Any]:
    return await call(
        hub, "POST", f"/api/v1/patients/{survivor}/merge", token, {"merged_id": str(merged)}
    )


async def _audited(hub: Hub, action: str) -> list[tuple[str, dict[str, Any]]]:
    async with hub.db.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(o, d) for o, d in rows]


async def _contacts(hub: Hub, patient: object) -> list[str]:
    async with hub.db.sessions() as session:
        return sorted(
            await session.scalars(
                select(PatientContact.value).where(
                    PatientContact.patient_id == uuid.UUID(str(patient))
                )
            )
        )


async def test_merge_moves_everything_and_unmerge_moves_it_back(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    keep = await profile_of(hub, checker, alice, 1, drug_description=SERTRALINE)
    gone = await profile_of(hub, checker, alice, 2, drug_description=FLUOXETINE)
    [kept_rx] = [
        p["id"]
        for p in (await call(hub, "GET", f"/api/v1/patients/{keep}", alice))[1]["prescriptions"]
    ]
    [gone_rx] = [
        p["id"]
        for p in (await call(hub, "GET", f"/api/v1/patients/{gone}", alice))[1]["prescriptions"]
    ]
    # contact points: one address on both (stays), one only on the merged (moves)
    for patient, value in (
        (keep, "both@example.net"),
        (gone, "both@example.net"),
        (gone, "only@example.net"),
    ):
        status, _ = await call(
            hub,
            "POST",
            f"/api/v1/patients/{patient}/contacts",
            alice,
            {"kind": "email", "value": value},
        )
        assert status == 200
    # preferences on the merged only: they move; the merged's allergy entries move too
    prefs = {"time_zone": "America/New_York", "preferred_channel": "email", "language": "es"}
    assert (await call(hub, "PUT", f"/api/v1/patients/{gone}/preferences", alice, prefs))[0] == 200
    status, _ = await call(
        hub, "POST", f"/api/v1/patients/{gone}/allergies", alice, {"allergy": "latex"}
    )
    assert status == 200
    for rx in (kept_rx, gone_rx):  # settle the allergy's re-check
        await asyncio.to_thread(checker.check, uuid.UUID(rx))

    status, merged = await _merge(hub, alice, keep, gone)
    assert status == 200, merged
    assert merged["survivor_id"] == keep
    assert merged["merged_id"] == gone
    assert merged["unmerged_at"] is None
    assert merged["moved"] == {
        "prescriptions": 1,
        "consults": 0,
        "notifications": 2,  # the codes sent to the merged profile's two addresses
        "contacts": 1,
        "contacts_kept": 1,
        "allergies": 1,
        "ledger_entries": 0,
        "payment_intents": 0,
        "refill_requests": 0,
        "med_sync": 0,
        "med_sync_kept": 0,
        "payment_customers": 0,
        "payment_cards": 0,
        "payment_cards_kept": 0,
        "preferences": 1,
    }
    assert merged["rechecking"] == 2
    survivor = (await call(hub, "GET", f"/api/v1/patients/{keep}", alice))[1]
    assert {p["id"] for p in survivor["prescriptions"]} == {kept_rx, gone_rx}
    assert _staff_allergies(survivor) == ["latex"]
    assert await _contacts(hub, keep) == ["both@example.net", "only@example.net"]
    assert await _contacts(hub, gone) == ["both@example.net"]
    async with hub.db.sessions() as session:
        row = await session.get(PatientProfile, uuid.UUID(gone))
        assert row is not None
        assert str(row.merged_into_id) == keep
        prefs_rows = list(await session.scalars(select(PatientPreferences.patient_id)))
        assert [str(p) for p in prefs_rows] == [keep]
    # both open prescriptions are checked again: the two SSRIs are one patient's now
    assert (await detail(hub, alice, gone_rx))["findings_stale"] is True
    for rx in (kept_rx, gone_rx):  # the first's re-check may check the second too
        await asyncio.to_thread(checker.check, uuid.UUID(rx))
    assert (await detail(hub, alice, gone_rx))["findings_stale"] is False
    codes = {f["code"] for f in (await detail(hub, alice, kept_rx))["findings"]}
    assert "THERAPEUTIC_DUPLICATION" in codes
    # the merged patient's next prescription goes to the survivor
    later = await reviewable(hub, checker, **someone(2))
    assert (await detail(hub, alice, later))["patient_id"] == keep
    # the merge's record, from either profile
    status, listed = await call(hub, "GET", f"/api/v1/patients/{gone}/merges", alice)
    assert status == 200
    assert [m["id"] for m in listed["items"]] == [merged["id"]]
    [(outcome, audited)] = await _audited(hub, "patient.merge")
    assert outcome == "success"
    assert audited["survivor_id"] == keep
    assert audited["merged_id"] == gone
    assert audited["moved"] == merged["moved"]

    # unmerge: exactly what moved goes back; the later prescription stays with the survivor
    status, undone = await call(
        hub, "POST", f"/api/v1/patient-merges/{merged['id']}/unmerge", alice
    )
    assert status == 200, undone
    assert undone["unmerged_at"] is not None
    back = (await call(hub, "GET", f"/api/v1/patients/{gone}", alice))[1]
    assert [p["id"] for p in back["prescriptions"]] == [gone_rx]
    assert _staff_allergies(back) == ["latex"]
    survivor = (await call(hub, "GET", f"/api/v1/patients/{keep}", alice))[1]
    assert {p["id"] for p in survivor["prescriptions"]} == {kept_rx, str(later)}
    assert _staff_allergies(survivor) == []
    assert await _contacts(hub, keep) == ["both@example.net"]
    assert await _contacts(hub, gone) == ["both@example.net", "only@example.net"]
    async with hub.db.sessions() as session:
        prefs_rows = list(await session.scalars(select(PatientPreferences.patient_id)))
        assert [str(p) for p in prefs_rows] == [gone]
    [(outcome, audited)] = await _audited(hub, "patient.unmerge")
    assert outcome == "success"
    assert audited["merged_id"] == gone
    assert audited["moved"]["prescriptions"] == 1
    status, body = await call(hub, "POST", f"/api/v1/patient-merges/{merged['id']}/unmerge", alice)
    assert (status, body["code"]) == (409, "already_unmerged")


async def test_merge_refusals(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    tech = await staff(hub, "terry", role="technician")
    a = await profile_of(hub, checker, alice, 1)
    b = await profile_of(hub, checker, alice, 2)
    c = await profile_of(hub, checker, alice, 3)
    status, body = await _merge(hub, alice, a, a)
    assert (status, body["code"]) == (422, "merge_self")
    assert (await _merge(hub, tech, a, b))[0] == 403
    status, body = await call(hub, "POST", f"/api/v1/patients/{a}/merge", alice, {"merged_id": 7})
    assert status == 400
    status, body = await call(hub, "POST", f"/api/v1/patients/{a}/merge", alice, {})
    assert status == 400
    status, body = await _merge(hub, alice, a, "6a1f0d9e-0000-4000-8000-000000000000")
    assert (status, body["code"]) == (404, "not_found")
    status, first = await _merge(hub, alice, a, b)
    assert status == 200
    status, body = await _merge(hub, alice, c, b)
    assert (status, body["code"]) == (409, "already_merged")
    status, body = await _merge(hub, alice, b, c)
    assert (status, body["code"]) == (409, "survivor_merged")
    # a later merge of the survivor: undo that one first
    status, second = await _merge(hub, alice, c, a)
    assert status == 200
    url = f"/api/v1/patient-merges/{first['id']}/unmerge"
    assert (await call(hub, "POST", url, tech))[0] == 403
    status, body = await call(hub, "POST", url, alice)
    assert (status, body["code"]) == (409, "survivor_merged")
    assert (await call(hub, "POST", f"/api/v1/patient-merges/{second['id']}/unmerge", alice))[
        0
    ] == 200
    assert (await call(hub, "POST", url, alice))[0] == 200
    outcomes = [o for o, _ in await _audited(hub, "patient.merge")]
    assert outcomes == ["refused", "not_found", "success", "refused", "refused", "success"]


async def test_an_unmerge_that_cannot_be_exact_is_refused(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    a = await profile_of(hub, checker, alice, 1)
    b = await profile_of(hub, checker, alice, 2)
    status, contact = await call(
        hub,
        "POST",
        f"/api/v1/patients/{b}/contacts",
        alice,
        {"kind": "email", "value": "b@example.net"},
    )
    assert status == 200
    status, merged = await _merge(hub, alice, a, b)
    assert merged["moved"]["contacts"] == 1
    # the moved contact point is removed from the survivor: it cannot go back
    status, _ = await call(hub, "DELETE", f"/api/v1/patients/{a}/contacts/{contact['id']}", alice)
    assert status == 200
    status, body = await call(hub, "POST", f"/api/v1/patient-merges/{merged['id']}/unmerge", alice)
    assert (status, body["code"]) == (409, "unmerge_not_exact")
    assert "contacts: 1" in body["detail"]
    async with hub.db.sessions() as session:
        row = await session.get(PatientProfile, uuid.UUID(b))
        assert row is not None
        assert str(row.merged_into_id) == a


async def test_another_pharmacy_gets_404_and_is_audited(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    a = await profile_of(hub, checker, alice, 1)
    b = await profile_of(hub, checker, alice, 2)
    status, merged = await _merge(hub, alice, a, b)
    assert status == 200
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    m_a = str(uuid.uuid4())
    for method, url, body in (
        ("POST", f"/api/v1/patients/{a}/merge", {"merged_id": m_a}),
        ("POST", f"/api/v1/patients/{m_a}/merge", {"merged_id": a}),
        ("GET", f"/api/v1/patients/{a}/merges", None),
        ("GET", f"/api/v1/patient-merges/{merged['id']}", None),
        ("POST", f"/api/v1/patient-merges/{merged['id']}/unmerge", None),
    ):
        status, answer = await call(hub, method, url, mallory, body)
        assert (status, answer["code"]) == (404, "not_found"), url
    async with hub.db.sessions() as session:
        misses = list(
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.outcome == "not_found", AuditEvent.action.like("patient.%merge%")
                )
            )
        )
    assert sorted(misses) == sorted(
        [
            "patient.merge",
            "patient.merge",
            "patient.merge.list",
            "patient.merge.read",
            "patient.unmerge",
        ]
    )


async def test_concurrent_merges_of_the_same_profiles_do_one(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    a = await profile_of(hub, checker, alice, 1)
    b = await profile_of(hub, checker, alice, 2)
    answers = await asyncio.gather(_merge(hub, alice, a, b), _merge(hub, alice, b, a))
    statuses = sorted(s for s, _ in answers)
    assert statuses == [200, 409], answers
    [refused] = [body for s, body in answers if s == 409]
    assert refused["code"] in {"already_merged", "survivor_merged"}
    async with hub.db.sessions() as session:
        merged = list(
            await session.scalars(
                select(PatientProfile.id).where(PatientProfile.merged_into_id.is_not(None))
            )
        )
    assert len(merged) == 1


def _staff_allergies(profile: dict[str, Any]) -> list[str]:
    return [a["text"] for a in profile["allergies"] if a["source"] == "staff"]
