"""The signed-in patient's own API: their prescriptions in plain words (another patient's is
404, audited as a miss), a refill request staff see and close, a renewal request when no
refills remain (none where the prescriber prohibited them), consent and preferences the
console shows, open consult invitations; every read audited with the patient as the actor.
Synthetic data only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.audit.models import AuditEvent
from server.consults.models import ConsultRow
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.patient_page_helpers import (
    change,
    linked,
    set_state,
    signed_in,
    verified_email,
)
from tests.functional.verification_helpers import bearer, staff

PROHIBITED = {"Body/NewRx": "<ProhibitRenewalRequest>true</ProhibitRenewalRequest>"}


async def get(hub: Hub, url: str) -> tuple[int, Any]:
    response = await hub.client.get(url)
    return response.status, await response.json()


async def mine(hub: Hub) -> dict[str, dict[str, Any]]:
    status, body = await get(hub, "/api/v1/me/prescriptions")
    assert status == 200, body
    return {item["id"]: item for item in body["items"]}


async def test_prescriptions_in_plain_words_and_another_patients_is_404(
    hub: Hub, checker: Checker
) -> None:
    rx_id, patient_id = await linked(hub, checker, refills="2")
    other_rx, _ = await linked(hub, checker, last="OTHERSON")
    tech = await staff(hub, "terry", role="technician")
    await verified_email(hub, tech, patient_id)
    csrf = await signed_in(hub)

    items = await mine(hub)
    assert set(items) == {str(rx_id)}  # never the other patient's
    item = items[str(rx_id)]
    assert (item["status"], item["status_text"]) == (
        "being_checked",
        "Being checked by the pharmacist",
    )
    assert item["drug"] == "lisinopril 10 MG Oral Tablet"
    assert item["can_ask"] is None
    await set_state(hub, rx_id, "ready")
    assert (await mine(hub))[str(rx_id)]["status_text"] == "Ready for pick-up"

    response = await hub.client.post(
        f"/api/v1/me/prescriptions/{other_rx}/refill", headers=change(csrf)
    )
    assert response.status == 404
    response = await hub.client.post("/api/v1/me/prescriptions/nope/refill", headers=change(csrf))
    assert response.status == 404
    async with hub.db.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.actor).where(
                AuditEvent.action.like("patient.%"), AuditEvent.actor.like("patient:%")
            )
        )
        seen = {(a, o) for a, o, actor in rows if actor == f"patient:{patient_id}"}
    assert ("patient.prescriptions.read", "success") in seen
    assert ("patient.refill.request", "not_found") in seen


async def test_a_refill_request_reaches_the_staff(hub: Hub, checker: Checker) -> None:
    rx_id, patient_id = await linked(hub, checker, refills="2")
    tech = await staff(hub, "terry", role="technician")
    await verified_email(hub, tech, patient_id)
    csrf = await signed_in(hub)
    await set_state(hub, rx_id, "completed", dispensed=1)
    assert (await mine(hub))[str(rx_id)]["can_ask"] == "refill"

    response = await hub.client.post(
        f"/api/v1/me/prescriptions/{rx_id}/refill", headers=change(csrf)
    )
    assert response.status == 200, await response.text()
    asked = await response.json()
    assert asked["request"]["kind"] == "refill"
    assert asked["can_ask"] is None
    again = await hub.client.post(f"/api/v1/me/prescriptions/{rx_id}/refill", headers=change(csrf))
    assert (again.status, (await again.json())["code"]) == (422, "refill_unavailable")
    no_csrf = await hub.client.post(f"/api/v1/me/prescriptions/{rx_id}/refill")
    assert no_csrf.status == 403

    response = await hub.client.get("/api/v1/refill-requests", headers=bearer(tech))
    assert response.status == 200
    (item,) = (await response.json())["items"]
    assert (item["kind"], item["prescription_id"], item["drug"]) == (
        "refill",
        str(rx_id),
        "lisinopril 10 MG Oral Tablet",
    )
    assert item["patient"]["last"] == "SYNTHETIC"
    # another pharmacy's staff see none of it, and cannot close it
    from tests.conftest import OTHER_PHARMACY

    await hub.pharmacy(**OTHER_PHARMACY)
    stranger = await staff(hub, "olga", role="technician", pharmacy=OTHER_PHARMACY["ncpdpid"])
    response = await hub.client.get("/api/v1/refill-requests", headers=bearer(stranger))
    assert (await response.json())["items"] == []
    url = f"/api/v1/refill-requests/{item['id']}/close"
    assert (await hub.client.post(url, json={}, headers=bearer(stranger))).status == 404
    response = await hub.client.post(url, json={"state": "done"}, headers=bearer(tech))
    assert response.status == 200
    assert (await response.json())["state"] == "done"
    response = await hub.client.get("/api/v1/refill-requests", headers=bearer(tech))
    assert (await response.json())["items"] == []
    assert (await mine(hub))[str(rx_id)]["request"]["state"] == "done"


async def test_no_refills_left_asks_for_a_renewal_unless_prohibited(
    hub: Hub, checker: Checker
) -> None:
    rx_id, patient_id = await linked(hub, checker, refills="0")
    prohibited, _ = await linked(hub, checker, refills="0", append=PROHIBITED)
    tech = await staff(hub, "terry", role="technician")
    await verified_email(hub, tech, patient_id)
    csrf = await signed_in(hub)
    for rx in (rx_id, prohibited):
        await set_state(hub, rx, "completed", dispensed=1)
    items = await mine(hub)
    assert items[str(rx_id)]["can_ask"] == "renewal"
    assert items[str(prohibited)]["can_ask"] is None
    response = await hub.client.post(
        f"/api/v1/me/prescriptions/{rx_id}/refill", headers=change(csrf)
    )
    assert (await response.json())["request"]["kind"] == "renewal"
    response = await hub.client.post(
        f"/api/v1/me/prescriptions/{prohibited}/refill", headers=change(csrf)
    )
    assert (response.status, (await response.json())["code"]) == (422, "refill_unavailable")


async def test_consent_and_preferences_show_in_the_console(hub: Hub, checker: Checker) -> None:
    _, patient_id = await linked(hub, checker)
    tech = await staff(hub, "terry", role="technician")
    await verified_email(hub, tech, patient_id)
    csrf = await signed_in(hub)
    status, prefs = await get(hub, "/api/v1/me/preferences")
    assert status == 200
    assert prefs["consent"]["ready_for_pickup"] == {"email": True, "sms": True}
    assert [c["kind"] for c in prefs["contacts"]] == ["email"]

    switches = [{"kind": k, "channel": "sms", "allowed": False} for k in prefs["consent"]]
    response = await hub.client.put(
        "/api/v1/me/consent", json={"switches": switches}, headers=change(csrf)
    )
    assert response.status == 200, await response.text()
    bad = [{"kind": "sign_in_code", "channel": "sms", "allowed": False}]
    response = await hub.client.put(
        "/api/v1/me/consent", json={"switches": bad}, headers=change(csrf)
    )
    assert (response.status, (await response.json())["code"]) == (422, "consent_invalid")

    # a channel needs a time zone the pharmacy set
    body = {"preferred_channel": "email", "pickup_or_delivery": "delivery"}
    response = await hub.client.put("/api/v1/me/preferences", json=body, headers=change(csrf))
    assert (response.status, (await response.json())["code"]) == (422, "preferences_invalid")
    response = await hub.client.put(
        "/api/v1/me/preferences", json={"pickup_or_delivery": "delivery"}, headers=change(csrf)
    )
    assert response.status == 200

    response = await hub.client.get(
        f"/api/v1/patients/{patient_id}/preferences", headers=bearer(tech)
    )
    console = await response.json()
    assert {kind: c["sms"] for kind, c in console["consent"].items()} == dict.fromkeys(
        console["consent"], False
    )
    assert console["consent"]["ready_for_pickup"]["email"] is True
    assert console["preferences"]["pickup_or_delivery"] == "delivery"
    assert await hub.audit_outcomes("patient.consent.update") == ["success"]


async def test_open_consult_invites(hub: Hub, checker: Checker) -> None:
    _, patient_id = await linked(hub, checker)
    tech = await staff(hub, "terry", role="technician")
    pharmacist = await staff(hub, "phil")
    await verified_email(hub, tech, patient_id)
    response = await hub.client.post(
        "/api/v1/consults", json={"patient_id": str(patient_id)}, headers=bearer(pharmacist)
    )
    assert response.status == 200, await response.text()
    consult = await response.json()
    await signed_in(hub)
    status, body = await get(hub, "/api/v1/me/consults")
    assert status == 200
    assert [i["id"] for i in body["items"]] == [consult["id"]]
    # the link the pharmacy sent, given again to the patient signed in (kept sealed)
    assert body["items"][0]["url"] == consult["invite_url"]
    async with hub.db.sessions() as session:
        sealed = await session.scalar(select(ConsultRow.invite_sealed))
    assert sealed
    assert consult["invite_url"].rsplit("/", 1)[1] not in sealed
