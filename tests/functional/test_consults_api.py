"""Scheduling video consults through the API: invite links, tenancy, cancellation, audit."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.consults.models import ConsultRow
from server.prescriptions.models import Prescription
from server.worker.checking import Checker
from signaling.consults import token_digest
from tests.conftest import ISSUER, OTHER_PHARMACY, Hub
from tests.functional.verification_helpers import bearer, reviewable, staff


async def _patient_of(hub: Hub, checker: Checker) -> tuple[str, str]:
    """A checked prescription (which linked its patient profile): (patient ID, rx ID)."""
    rx_id = await reviewable(hub, checker)
    async with hub.db.sessions() as session:
        patient = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    assert patient is not None
    return str(patient), str(rx_id)


async def test_schedule_read_and_cancel(hub: Hub, checker: Checker) -> None:
    patient, rx = await _patient_of(hub, checker)
    alice = await staff(hub, "alice")
    created = await hub.client.post(
        "/api/v1/consults",
        json={"patient_id": patient, "prescription_id": rx},
        headers=bearer(alice),
    )
    assert created.status == 200, await created.text()
    consult = await created.json()
    assert consult["state"] == "scheduled"
    assert consult["invite_url"].startswith(f"{ISSUER}/consult/")
    token = consult["invite_url"].rsplit("/", 1)[1]
    assert len(token) >= 43
    async with hub.db.sessions() as session:
        row = await session.get(ConsultRow, uuid.UUID(consult["id"]))
    assert row is not None
    assert row.invite_digest == token_digest(token)  # only the digest is stored
    assert token not in str(row.__dict__)

    read = await (
        await hub.client.get(f"/api/v1/consults/{consult['id']}", headers=bearer(alice))
    ).json()
    assert "invite_url" not in read  # shown once
    assert [(h["from"], h["to"]) for h in read["history"]] == [(None, "scheduled")]

    bob = await staff(hub, "bob")
    refused = await hub.client.post(f"/api/v1/consults/{consult['id']}/cancel", headers=bearer(bob))
    assert (refused.status, (await refused.json())["code"]) == (409, "not_yours")
    cancelled = await hub.client.post(
        f"/api/v1/consults/{consult['id']}/cancel", headers=bearer(alice)
    )
    assert cancelled.status == 200
    assert [(h["from"], h["to"]) for h in (await cancelled.json())["history"]] == [
        (None, "scheduled"),
        ("scheduled", "cancelled"),
    ]
    again = await hub.client.post(f"/api/v1/consults/{consult['id']}/cancel", headers=bearer(alice))
    assert (again.status, (await again.json())["code"]) == (409, "wrong_state")
    async with hub.db.sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action + ":" + AuditEvent.outcome)
                .where(AuditEvent.resource_type == "consult")
                .order_by(AuditEvent.seq)
            )
        )
    assert actions == [
        "consult.create:success",
        "consult.read:success",
        "consult.cancel:refused",
        "consult.cancel:success",
        "consult.cancel:refused",
    ]


async def test_other_pharmacies_and_technicians(hub: Hub, checker: Checker) -> None:
    patient, _ = await _patient_of(hub, checker)
    tech = await staff(hub, "terry", "technician")
    response = await hub.client.post(
        "/api/v1/consults", json={"patient_id": patient}, headers=bearer(tech)
    )
    assert response.status == 403
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    response = await hub.client.post(
        "/api/v1/consults", json={"patient_id": patient}, headers=bearer(mallory)
    )
    assert response.status == 404
    alice = await staff(hub, "alice")
    consult = await (
        await hub.client.post(
            "/api/v1/consults", json={"patient_id": patient}, headers=bearer(alice)
        )
    ).json()
    for method, suffix in (("GET", ""), ("POST", "/cancel")):
        response = await hub.client.request(
            method, f"/api/v1/consults/{consult['id']}{suffix}", headers=bearer(mallory)
        )
        assert response.status == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"patient_id": "nope"}, {"patient_id": 42}, {"patient_id": str(uuid.uuid4()), "x": 1}],
)
async def test_bad_bodies(hub: Hub, body: dict[str, object]) -> None:
    await hub.pharmacy()
    alice = await staff(hub, "alice")
    response = await hub.client.post("/api/v1/consults", json=body, headers=bearer(alice))
    assert response.status == 400


async def test_the_pharmacists_open_consults_are_listed_for_them_only(
    hub: Hub, checker: Checker
) -> None:
    patient, _ = await _patient_of(hub, checker)
    alice, bob = await staff(hub, "alice"), await staff(hub, "bob")
    created = await (
        await hub.client.post(
            "/api/v1/consults", json={"patient_id": patient}, headers=bearer(alice)
        )
    ).json()
    mine = await (await hub.client.get("/api/v1/consults", headers=bearer(alice))).json()
    assert [(c["id"], c["state"]) for c in mine["items"]] == [(created["id"], "scheduled")]
    assert mine["items"][0]["patient"]["last"] == "TESTPATIENT"
    theirs = await (await hub.client.get("/api/v1/consults", headers=bearer(bob))).json()
    assert theirs == {"items": [], "next_cursor": None}
    ended = await hub.client.get(
        "/api/v1/consults", params={"state": "ended"}, headers=bearer(alice)
    )
    assert (await ended.json())["items"] == []
    bad = await hub.client.get("/api/v1/consults", params={"state": "x"}, headers=bearer(alice))
    assert bad.status == 400


async def test_an_invite_is_checked_without_an_account_and_the_check_is_audited(
    hub: Hub, checker: Checker
) -> None:
    patient, _ = await _patient_of(hub, checker)
    alice = await staff(hub, "alice")
    created = await (
        await hub.client.post(
            "/api/v1/consults", json={"patient_id": patient}, headers=bearer(alice)
        )
    ).json()
    token = created["invite_url"].rsplit("/", 1)[1]

    ok = await hub.client.post("/api/v1/invites/check", json={"invite": token})
    assert ok.status == 200
    assert (await ok.json())["pharmacy"]
    wrong = await hub.client.post("/api/v1/invites/check", json={"invite": "x" * 43})
    assert (wrong.status, (await wrong.json())["code"]) == (404, "invite_invalid")
    for body in ({"invite": 5}, {"invite": token, "more": 1}, {"invite": "short"}):
        refused = await hub.client.post("/api/v1/invites/check", json=body)
        assert refused.status == 400
    cancel = await hub.client.post(
        f"/api/v1/consults/{created['id']}/cancel", headers=bearer(alice)
    )
    assert cancel.status == 200
    over = await hub.client.post("/api/v1/invites/check", json={"invite": token})
    assert (over.status, (await over.json())["code"]) == (409, "consult_over")
    assert await hub.audit_outcomes("consult.invite_check") == ["success", "consult_over"]
