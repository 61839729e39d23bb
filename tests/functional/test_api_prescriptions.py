"""``/api/v1/prescriptions``: reads for pharmacy systems, own pharmacy only, all audited."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.patients import directory
from server.patients.models import PatientAllergy, PatientProfile
from server.prescriptions import store
from server.prescriptions.models import Prescription
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.consult_helpers import patient
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import edit, newrx_xml, veterinarian_without_npi


async def _received(hub: Hub) -> tuple[str, str]:
    """A pharmacy with one received NewRx; returns (message_id, rx:read token)."""
    await hub.pharmacy()
    message_id = uuid.uuid4().hex[:20]
    reply = await (await post_script(hub, newrx_xml(message_id=message_id),
                                     await hub.sender_token())).read()  # fmt: skip
    assert b"<Status>" in reply
    reader = await hub.machine_client("rx:read", pharmacy="1234567")
    return message_id, await hub.token(reader, scope="rx:read")


async def _other_reader(hub: Hub) -> str:
    """An rx:read token of a second pharmacy."""
    await hub.pharmacy(**OTHER_PHARMACY)
    client = await hub.machine_client("rx:read", pharmacy=OTHER_PHARMACY["ncpdpid"])
    return await hub.token(client, scope="rx:read")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_list_by_message_id_then_read_whole_prescription(hub: Hub) -> None:
    message_id, token = await _received(hub)
    listing = await hub.client.get(
        "/api/v1/prescriptions", params={"message_id": message_id}, headers=_auth(token)
    )
    assert listing.status == 200
    items = (await listing.json())["items"]
    assert [i["message_id"] for i in items] == [message_id]
    assert items[0]["state"] == "received"

    response = await hub.client.get(f"/api/v1/prescriptions/{items[0]['id']}", headers=_auth(token))
    assert response.status == 200
    rx = await response.json()
    assert {"id", "state", "message_id", "patient", "medication", "findings"} <= rx.keys()
    assert rx["patient"]["name"]["last"] == "TESTPATIENT"
    assert rx["medication"]["drug_description"]
    assert [(h["from"], h["to"]) for h in rx["history"]] == [(None, "received")]

    async with hub.db.sessions() as session:
        actions = list(await session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("prescription.%"))
            .order_by(AuditEvent.id)
        ))  # fmt: skip
    assert actions == ["prescription.receive", "prescription.list", "prescription.read"]


async def test_a_veterinary_prescription_reads_without_npi_or_full_addresses(hub: Hub) -> None:
    """The Standard's optional parts stay absent: no NPI and no address for the veterinarian,
    no country in the animal's address, no first line in the pharmacy's."""
    await hub.pharmacy()
    message_id = uuid.uuid4().hex[:20]
    body = edit(veterinarian_without_npi(), replace={"Header/MessageID": message_id},
                omit=["Body/NewRx/Pharmacy/Address/AddressLine1"])  # fmt: skip
    reply = await (await post_script(hub, body, await hub.sender_token())).read()
    assert b"<Status>" in reply
    reader = await hub.machine_client("rx:read", pharmacy="1234567")
    token = await hub.token(reader, scope="rx:read")
    listing = await hub.client.get(
        "/api/v1/prescriptions", params={"message_id": message_id}, headers=_auth(token)
    )
    (item,) = (await listing.json())["items"]
    response = await hub.client.get(f"/api/v1/prescriptions/{item['id']}", headers=_auth(token))
    assert response.status == 200
    rx = await response.json()
    prescriber = rx["prescriber"]
    assert prescriber["kind"] == "veterinarian"
    assert (prescriber["npi"], prescriber["address"]) == (None, None)
    assert prescriber["state_license_number"] == "VET-CA-12345"
    assert rx["patient"]["address"]["country_code"] is None
    assert rx["patient"]["address"]["postal_code"] == "90000"


async def test_filters_by_state(hub: Hub) -> None:
    _, token = await _received(hub)
    for state, count in (("received", 1), ("awaiting_review", 0)):
        response = await hub.client.get(
            "/api/v1/prescriptions", params={"state": state}, headers=_auth(token)
        )
        assert len((await response.json())["items"]) == count


async def test_other_pharmacy_sees_nothing_and_gets_404(hub: Hub) -> None:
    message_id, token = await _received(hub)
    rx_id = (await (await hub.client.get(
        "/api/v1/prescriptions", params={"message_id": message_id}, headers=_auth(token)
    )).json())["items"][0]["id"]  # fmt: skip
    other = await _other_reader(hub)
    listing = await hub.client.get("/api/v1/prescriptions", headers=_auth(other))
    assert (await listing.json())["items"] == []
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=_auth(other))
    assert response.status == 404
    assert "TESTPATIENT" not in await response.text()
    async with hub.db.sessions() as session:
        miss = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "prescription.read",
                                     AuditEvent.outcome == "not_found")
        )  # fmt: skip
    assert miss is not None
    assert miss.resource_id == rx_id


async def test_sender_token_cannot_read(hub: Hub) -> None:
    await hub.pharmacy()
    response = await hub.client.get(
        "/api/v1/prescriptions", headers=_auth(await hub.sender_token())
    )
    assert response.status == 403


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/prescriptions", {"state": "bogus"}, 400),
        ("/api/v1/prescriptions", {"limit": "-1"}, 400),
        ("/api/v1/prescriptions", {"limit": "10000"}, 400),
        ("/api/v1/prescriptions", {"message_id": "x" * 36}, 400),
        ("/api/v1/prescriptions/not-a-uuid", {}, 404),
        (f"/api/v1/prescriptions/{uuid.uuid4()}", {}, 404),
    ],
)
async def test_bad_parameters_are_problems_not_500s(
    hub: Hub, path: str, params: dict[str, str], status: int
) -> None:
    _, token = await _received(hub)
    response = await hub.client.get(path, params=params, headers=_auth(token))
    assert response.status == status
    assert response.content_type == "application/problem+json"


async def _revision(hub: Hub, token: str) -> str:
    response = await hub.client.get("/api/v1/queue/revision", headers=_auth(token))
    assert response.status == 200
    return str((await response.json())["revision"])


async def test_the_queue_revision_moves_with_arrivals_and_state_changes_only(hub: Hub) -> None:
    _, token = await _received(hub)
    first = await _revision(hub, token)
    assert await _revision(hub, token) == first  # nothing changed: the same token
    message_id = uuid.uuid4().hex[:20]
    await post_script(hub, newrx_xml(message_id=message_id), await hub.sender_token())
    second = await _revision(hub, token)
    assert second != first
    # a move between states through the prescriptions' writer (the checks start)
    async with hub.db.transaction() as session:
        rx_id = await session.scalar(
            select(Prescription.id).where(Prescription.message_id == message_id)
        )
        assert rx_id is not None
        await session.run_sync(lambda s: store.start_checks(s, [rx_id], directory.link))
    assert await _revision(hub, token) not in (first, second)
    other = await _other_reader(hub)
    assert await _revision(hub, other) != second  # another pharmacy's queue is its own
    async with hub.db.sessions() as session:
        audited = await session.scalar(
            select(AuditEvent).where(AuditEvent.action.like("%revision%"))
        )
    assert audited is None  # no patient data in it: polling leaves no audit entry


async def test_a_patient_profile_is_its_pharmacys_only_and_every_read_is_audited(
    hub: Hub,
) -> None:
    _, token = await _received(hub)
    profile_id = uuid.UUID(await patient(hub))
    async with hub.db.transaction() as session:
        profile = await session.get(PatientProfile, profile_id)
        rx = await session.scalar(select(Prescription))
        assert profile is not None
        assert rx is not None
        session.add(
            PatientAllergy(
                patient_id=profile.id,
                pharmacy_id=profile.pharmacy_id,
                text="penicillin",
                code_system="free_text",
            )
        )
        rx.patient_id = profile.id
    response = await hub.client.get(f"/api/v1/patients/{profile.id}", headers=_auth(token))
    assert response.status == 200
    body = await response.json()
    assert [(a["text"], a["source"]) for a in body["allergies"]] == [("penicillin", "staff")]
    assert [p["id"] for p in body["prescriptions"]] == [str(rx.id)]
    assert body["active_medications"] == []  # received, not accepted

    other = await _other_reader(hub)
    missing = await hub.client.get(f"/api/v1/patients/{profile.id}", headers=_auth(other))
    assert missing.status == 404
    assert "synthetic" not in await missing.text()
    assert await hub.audit_outcomes("patient.read") == ["success", "not_found"]
