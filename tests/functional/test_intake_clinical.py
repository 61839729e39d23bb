"""What a pharmacist must see arrives whole: a NewRx with every clinical part read back through
the API; and a SCRIPT test message is acknowledged and kept, but never a prescription."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from eprescribe.ncpdp import NewRx, OrderDetails, parse_message, to_json
from server import audit
from server.admin.models import Pharmacy
from server.audit.models import AuditEvent
from server.db.models import utcnow
from server.prescriptions.models import InboundMessage, Prescription
from server.prescriptions.store import intake_record
from server.prescriptions.writer import IntakeWriter
from server.worker.checking import Checker
from server.worker.sweep import Sweep
from tests.conftest import Hub
from tests.functional.check_helpers import history
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import clinical_newrx, newrx_xml


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _reader(hub: Hub) -> str:
    reader = await hub.machine_client("rx:read", pharmacy="1234567")
    return await hub.token(reader, scope="rx:read")


async def _post(hub: Hub, body: bytes) -> bytes:
    return await (await post_script(hub, body, await hub.sender_token())).read()


async def _list(hub: Hub, token: str, **params: str) -> list[dict[str, Any]]:
    response = await hub.client.get("/api/v1/prescriptions", params=params, headers=_auth(token))
    assert response.status == 200
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def _revision(hub: Hub, token: str) -> str:
    response = await hub.client.get("/api/v1/queue/revision", headers=_auth(token))
    return str((await response.json())["revision"])


async def test_every_clinical_part_reads_back_through_the_api(hub: Hub) -> None:
    await hub.pharmacy()
    token = await _reader(hub)
    body = clinical_newrx(message_id="CLINICAL-0001")
    assert b"<Status>" in await _post(hub, body)
    message = parse_message(body)
    assert isinstance(message.body, NewRx)

    (item,) = await _list(hub, token, message_id="CLINICAL-0001")
    assert (item["do_not_fill"], item["test"]) == ("Y", False)
    response = await hub.client.get(f"/api/v1/prescriptions/{item['id']}", headers=_auth(token))
    assert response.status == 200
    rx = await response.json()
    assert rx["test"] is False
    medication = rx["medication"]
    assert medication == to_json(message.body.medication)
    assert medication["do_not_fill"] == "Y"
    assert medication["need_no_later_than"] == {
        "date": {"date": "2025-01-17", "datetime": None},
        "reasons": ["Discharge from the care home on Friday"],
    }
    assert [i["description"] for i in medication["compound"]["ingredients"]] == [
        "TESTDRUG 10 MG ORAL TABLET",
        "TESTVEHICLE ORAL SUSPENSION",
    ]
    assert medication["prior_authorization"] == {"number": "PA-TEST-0001", "status": "A"}
    assert medication["drug_use_evaluations"][0]["service_reason_code"] == "ER"
    assert medication["delivery_request"] == "FIRST FILL DELIVERY"
    details = rx["details"]
    assert details == to_json(OrderDetails.of(message.header, message.body))
    weight, height = details["observation"]["measurements"]
    assert (weight["vital_sign"], weight["value"], weight["unit"]) == ("29463-7", "18.4", "kg")
    assert (height["vital_sign"], height["value"], height["unit"]) == ("8302-2", "109", "cm")
    assert weight["date"]["date"] == "2025-01-14"
    assert details["supervisor"]["name"]["last"] == "TESTSUPERVISOR"
    assert details["facility"]["name"] == "TEST CARE HOME"


async def test_a_hold_is_flagged_in_the_queue_and_a_plain_order_is_not(hub: Hub) -> None:
    await hub.pharmacy()
    token = await _reader(hub)
    await _post(hub, clinical_newrx(message_id="HOLD-0001", do_not_fill="H"))
    await _post(hub, newrx_xml(message_id="PLAIN-0001"))
    flags = {i["message_id"]: i["do_not_fill"] for i in await _list(hub, token)}
    assert flags == {"HOLD-0001": "H", "PLAIN-0001": None}


async def test_a_test_message_is_acknowledged_kept_and_never_a_prescription(
    hub: Hub, checker: Checker
) -> None:
    await hub.pharmacy()
    token = await _reader(hub)
    await _post(hub, newrx_xml(message_id="LIVE-0001"))
    before = await _revision(hub, token)

    body = clinical_newrx(message_id="TEST-MSG-0001", test_message=True)
    reply = parse_message(await _post(hub, body))
    assert reply.transaction == "Status"
    assert reply.header.relates_to_message_id == "TEST-MSG-0001"

    # kept as received, and audited as a test
    async with hub.db.sessions() as session:
        rx = await session.scalar(
            select(Prescription).where(Prescription.message_id == "TEST-MSG-0001")
        )
        assert rx is not None
        inbound = await session.get(InboundMessage, rx.inbound_message_id)
        audited = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "prescription.receive", AuditEvent.resource_id == str(rx.id)
            )
        )
    assert inbound is not None
    assert (inbound.raw, inbound.sha256) == (body, hashlib.sha256(body).hexdigest())
    assert (rx.test, rx.state, rx.patient_id) == (True, "received", None)
    assert audited is not None
    assert audited.detail["test"] is True

    # never in the queue, nor in its revision; visible with the filter, marked as a test
    assert [i["message_id"] for i in await _list(hub, token)] == ["LIVE-0001"]
    assert await _revision(hub, token) == before
    (item,) = await _list(hub, token, test="true")
    assert (item["message_id"], item["test"]) == ("TEST-MSG-0001", True)
    detail = await hub.client.get(f"/api/v1/prescriptions/{item['id']}", headers=_auth(token))
    assert (await detail.json())["test"] is True

    # the checker, asked to check it anyway, does nothing: no checks, no patient link
    assert await asyncio.to_thread(checker.check, rx.id) is None
    assert await history(hub, rx.id) == [(None, "received")]
    async with hub.db.sessions() as session:
        assert await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx.id)
        ) is None  # fmt: skip


async def test_the_intake_hands_only_live_prescriptions_to_the_checks(hub: Hub) -> None:
    await hub.pharmacy()
    async with hub.db.sessions() as session:
        pharmacy_id = await session.scalar(select(Pharmacy.id))
    assert pharmacy_id is not None
    handed: list[uuid.UUID] = []
    writer = IntakeWriter(hub.db, on_stored=handed.extend)
    records = []
    for raw in (newrx_xml(message_id="LIVE-0002"), newrx_xml(message_id="TEST-0002")):
        if b"TEST-0002" in raw:
            raw = clinical_newrx(message_id="TEST-0002", test_message=True)
        message = parse_message(raw)
        assert isinstance(message.body, NewRx)
        actor = audit.Actor("client", "c", pharmacy_id)
        records.append(intake_record(message, message.body, raw, actor, pharmacy_id, utcnow()))
    await asyncio.gather(*(writer.write(record) for record in records))
    await writer.close()
    assert handed == [records[0].prescription_id]


class _Recorder:
    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []

    def submit(self, ids: Iterable[uuid.UUID]) -> None:
        self.ids.extend(ids)


async def test_the_sweep_never_takes_a_test_message_for_stuck(hub: Hub) -> None:
    await hub.pharmacy()
    await _post(hub, newrx_xml(message_id="LIVE-0003"))
    await _post(hub, clinical_newrx(message_id="TEST-0003", test_message=True))
    found = _Recorder()
    await asyncio.sleep(0.2)
    assert await Sweep(hub.db, found, stuck_after=0.1)() == 1
    async with hub.db.sessions() as session:
        live = await session.scalar(
            select(Prescription.id).where(Prescription.message_id == "LIVE-0003")
        )
    assert found.ids == [live]


async def test_the_test_filter_takes_true_or_false_only(hub: Hub) -> None:
    await hub.pharmacy()
    token = await _reader(hub)
    response = await hub.client.get(
        "/api/v1/prescriptions", params={"test": "yes"}, headers=_auth(token)
    )
    assert response.status == 400
    assert response.content_type == "application/problem+json"
