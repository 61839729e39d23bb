"""The checks see the whole patient (issue 14): prescriptions still open in the pharmacy are
part of the picture, a change of the picture checks the patient's open prescriptions again,
and no approval rests on findings computed on an older picture."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.check_helpers import someone
from tests.functional.test_verification import act, detail, queue
from tests.functional.verification_helpers import bearer, receive, reviewable, staff

PHENELZINE = "phenelzine 15 MG Oral Tablet"
SERTRALINE = "sertraline 50 MG Oral Tablet"
FLUOXETINE = "fluoxetine 20 MG Oral Capsule"
SIMVASTATIN = "simvastatin 40 MG Oral Tablet"
CLARITHROMYCIN = "clarithromycin 500 MG Oral Tablet"
AMOXICILLIN = "amoxicillin 500 MG Oral Capsule"
#: the pairs two prescribers sending scripts for one patient can make (issue 14)
PAIRS = {
    "maoi-ssri": (PHENELZINE, SERTRALINE, "DRUG_INTERACTION"),
    "two-ssris": (SERTRALINE, FLUOXETINE, "THERAPEUTIC_DUPLICATION"),
    "statin-macrolide": (SIMVASTATIN, CLARITHROMYCIN, "DRUG_INTERACTION"),
}
PAIR_CODES = {"DRUG_INTERACTION", "THERAPEUTIC_DUPLICATION", "DRUG_ALLERGY"}


def _on(rx: dict[str, Any], code: str, other: uuid.UUID) -> list[dict[str, Any]]:
    """``rx``'s findings of ``code`` that rest on the pending prescription ``other``."""
    return [
        f
        for f in rx["findings"]
        if f["code"] == code and f["evidence"].get("pending_prescription_id") == str(other)
    ]


@pytest.mark.parametrize("first_second", ["ab", "ba"])
@pytest.mark.parametrize("pair", sorted(PAIRS))
async def test_a_pair_in_the_queue_flags_both_whichever_came_first(
    hub: Hub, checker: Checker, pair: str, first_second: str
) -> None:
    a, b, code = PAIRS[pair]
    drugs = (a, b) if first_second == "ab" else (b, a)
    first = await reviewable(hub, checker, drug_description=drugs[0])
    alice = await staff(hub, "alice")
    assert not _codes_of(await detail(hub, alice, first)) & PAIR_CODES
    # from another prescriber, a minute later: the first is still in the queue
    second = await reviewable(hub, checker, drug_description=drugs[1], prescriber_npi="1437194781")
    later, earlier = await detail(hub, alice, second), await detail(hub, alice, first)
    [finding] = _on(later, code, first)
    assert "pending prescription" in finding["message"]
    assert "not yet verified" in finding["message"]
    assert drugs[0] in finding["message"]
    assert finding["evidence"]["pending_received_at"] == earlier["received_at"]
    # the first was checked again when the second arrived: the pharmacist sees the pair
    # whichever they open first
    assert _on(earlier, code, second)
    assert earlier["findings_stale"] is later["findings_stale"] is False
    listed = {item["id"]: item["findings"] for item in await queue(hub, alice)}
    assert listed[str(first)]["on_pending"] >= 1
    assert listed[str(second)]["on_pending"] >= 1
    assert listed[str(second)]["stale"] is False
    async with hub.db.sessions() as session:
        checks = await session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == "prescription.check", AuditEvent.resource_id == str(first)
            )
        )
        assert [d.get("again", False) for d in checks] == [False, True]


def _codes_of(rx: dict[str, Any]) -> set[str]:
    return {f["code"] for f in rx["findings"]}


async def test_a_clean_prescription_raises_no_pair_finding(hub: Hub, checker: Checker) -> None:
    lone = await reviewable(hub, checker, **someone(7))
    # beside a pending prescription that neither interacts nor duplicates
    beside = await reviewable(hub, checker, drug_description=AMOXICILLIN, **someone(7))
    alice = await staff(hub, "alice")
    for rx_id in (lone, beside):
        rx = await detail(hub, alice, rx_id)
        assert not _codes_of(rx) & PAIR_CODES, rx["findings"]
        assert rx["findings_basis"] is not None


async def test_rejecting_one_clears_the_finding_on_the_other(hub: Hub, checker: Checker) -> None:
    maoi = await reviewable(hub, checker, drug_description=PHENELZINE)
    ssri = await reviewable(hub, checker, drug_description=SERTRALINE)
    alice = await staff(hub, "alice")
    assert _on(await detail(hub, alice, maoi), "DRUG_INTERACTION", ssri)
    assert (await act(hub, alice, ssri, "claim"))[0] == 200
    status, _ = await act(
        hub, alice, ssri, "reject", {"reason_code": "drug_interaction", "text": "MAOI on file"}
    )
    assert status == 200
    stale = await detail(hub, alice, maoi)
    assert stale["findings_stale"] is True  # queued to be checked again
    # what the worker does with the ID the hub queued
    assert await asyncio.to_thread(checker.check, maoi) is not None
    fresh = await detail(hub, alice, maoi)
    assert fresh["findings_stale"] is False
    assert "DRUG_INTERACTION" not in _codes_of(fresh)
    assert fresh["findings_basis"] > stale["findings_basis"]


async def test_approval_on_a_stale_picture_is_refused_then_succeeds_after_review(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker, drug_description="TESTDRUG 10 MG ORAL TABLET")
    alice = await staff(hub, "alice")
    seen = await detail(hub, alice, rx_id)
    overrides = {f["code"]: "checked with the prescriber" for f in seen["findings"]}
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    # the patient's picture changes while the pharmacist reviews
    patient = seen["patient_id"]
    assert (await _add_allergy(hub, alice, patient, "peanuts"))[0] == 200
    status, body = await act(hub, alice, rx_id, "approve", {"overrides": overrides})
    assert (status, body["code"]) == (409, "checked_again")
    assert "review the new findings" in body["detail"]
    assert (await detail(hub, alice, rx_id))["findings_stale"] is True
    assert await asyncio.to_thread(checker.check, rx_id) is not None  # the queued re-check
    # the findings the pharmacist saw are not the current ones: refused as well
    status, body = await act(
        hub,
        alice,
        rx_id,
        "approve",
        {"overrides": overrides, "findings_basis": seen["findings_basis"]},
    )
    assert (status, body["code"]) == (409, "checked_again")
    reviewed = await detail(hub, alice, rx_id)
    assert reviewed["state"] == "in_review"  # the claim held throughout
    overrides = {f["code"]: "checked with the prescriber" for f in reviewed["findings"]}
    status, body = await act(
        hub,
        alice,
        rx_id,
        "approve",
        {"overrides": overrides, "findings_basis": reviewed["findings_basis"]},
    )
    assert (status, body["state"]) == (200, "approved"), body


async def test_an_allergy_added_to_the_profile_checks_the_open_prescriptions_again(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker, drug_description=AMOXICILLIN)
    tech = await staff(hub, "terry", role="technician")
    rx = await detail(hub, tech, rx_id)
    assert "DRUG_ALLERGY" not in _codes_of(rx)
    status, body = await _add_allergy(hub, tech, rx["patient_id"], "  Penicillin ")
    assert (status, [a["text"] for a in body["allergies"]]) == (200, ["Penicillin"])
    assert body["rechecking"] == 1
    # the same entry again changes nothing and queues nothing
    status, body = await _add_allergy(hub, tech, rx["patient_id"], "penicillin")
    assert (status, [a["text"] for a in body["allergies"]]) == (200, ["Penicillin"])
    assert body["rechecking"] == 0
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    rechecked = await detail(hub, tech, rx_id)
    assert "DRUG_ALLERGY" in _codes_of(rechecked)
    assert not rechecked["findings_stale"]


async def test_allergy_entries_are_checked_and_stay_in_the_pharmacy(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    patient = (await detail(hub, alice, rx_id))["patient_id"]
    assert (await _add_allergy(hub, alice, patient, " "))[0] == 422
    assert (await _add_allergy(hub, alice, patient, "x" * 106))[0] == 400
    assert (await _add_allergy(hub, alice, str(uuid.uuid4()), "penicillin"))[0] == 404
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy="7654321")
    assert (await _add_allergy(hub, mallory, patient, "penicillin"))[0] == 404
    response = await hub.client.post(
        f"/api/v1/patients/{patient}/allergies",
        data=b"{not json",
        headers={**bearer(alice), "Content-Type": "application/json"},
    )
    assert response.status == 400
    async with hub.db.sessions() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome)
                .where(AuditEvent.action == "patient.allergy.add")
                .order_by(AuditEvent.seq)
            )
        )
    assert outcomes == ["not_found", "not_found"]


async def _add_allergy(
    hub: Hub, token: str, patient: object, allergy: str
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/patients/{patient}/allergies", json={"allergy": allergy}, headers=bearer(token)
    )
    return response.status, await response.json()


async def test_a_flood_for_one_patient_compares_the_latest_and_says_so(
    hub: Hub, checker: Checker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.worker.checking.PENDING_COMPARED", 3)
    ids = [await receive(hub, drug_description=SERTRALINE) for _ in range(5)]
    await asyncio.to_thread(checker.check_many, ids)
    last = await receive(hub, drug_description=FLUOXETINE)
    await asyncio.to_thread(checker.check, last)
    alice = await staff(hub, "alice")
    rx = await detail(hub, alice, last)
    [incomplete] = [f for f in rx["findings"] if f["code"] == "PICTURE_INCOMPLETE"]
    assert incomplete["severity"] == "warning"
    assert incomplete["evidence"] == {"pending_compared": 3, "pending_omitted": 2}
    assert len([f for f in rx["findings"] if f["code"] == "THERAPEUTIC_DUPLICATION"]) == 3


async def test_a_new_script_unrelated_to_the_others_does_not_check_them_again(
    hub: Hub, checker: Checker
) -> None:
    """The checks that compare two prescriptions are symmetric: the others a new script's
    findings do not name keep their findings, carried to the new picture, and are not checked
    again (a patient's open scripts would otherwise cost one check each per arrival)."""
    others = [
        await reviewable(hub, checker, drug_description=d)
        for d in (AMOXICILLIN, SIMVASTATIN, "metformin hydrochloride 500 MG Oral Tablet")
    ]
    new = await reviewable(hub, checker, drug_description=CLARITHROMYCIN)
    alice = await staff(hub, "alice")
    basis = (await detail(hub, alice, new))["findings_basis"]
    for rx_id in others:
        rx = await detail(hub, alice, rx_id)
        assert rx["findings_stale"] is False
        assert rx["findings_basis"] == basis
    async with hub.db.sessions() as session:
        again = await session.scalars(
            select(AuditEvent.resource_id).where(AuditEvent.action == "prescription.check")
        )
        checked = sorted(again)
    # simvastatin + clarithromycin is a pair: the statin was checked again; the others not
    assert sorted(str(i) for i in (*others, new, others[1])) == checked
