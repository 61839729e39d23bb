"""The pharmacist's view of a patient (issue 17, "Profile"): coded allergy entries added and
removed by staff (and seen by the checks of a new prescription), the prescriptions' own
allergies and diagnoses, medications with their prescribers, the fills, the timeline (newest
first, keyset pages) and the search by name, birth date and phone. Own pharmacy only, every
read audited. Synthetic data only."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from lxml import etree
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.dispensing.models import Fill, FillTransition
from server.patients.models import PatientContact
from server.prescriptions.models import Prescription
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.intake_helpers import post_script
from tests.functional.test_verification import act, detail
from tests.functional.verification_helpers import bearer, reviewable, staff
from tests.support.script_samples import newrx_tree, to_bytes

AMOXICILLIN = "amoxicillin 500 MG Oral Capsule"
PENICILLIN = {
    "allergy": "penicillin",
    "code_system": "rxnorm",
    "code": "7980",
    "reaction": "hives",
    "severity": "severe",
}


async def call(
    hub: Hub, method: str, url: str, token: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    response = await hub.client.request(
        method, url, json=body, params=params or None, headers=bearer(token)
    )
    return response.status, await response.json()


async def _audit(hub: Hub, action: str) -> list[AuditEvent]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
        )


def _el(tag: str, *children: etree._Element | str) -> etree._Element:
    el = etree.Element(tag)
    for child in children:
        if isinstance(child, str):
            el.text = child
        else:
            el.append(child)
    return el


async def receive_full(hub: Hub, **fields: Any) -> uuid.UUID:
    """A NewRx that carries two allergies and two diagnoses, as EHRs send them."""
    await hub.pharmacy()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    message_id = uuid.uuid4().hex[:20]
    fields.setdefault("drug_description", "lisinopril 10 MG Oral Tablet")
    root = newrx_tree(
        message_id=message_id, sent_time=f"{today}T00:00:00Z", written_date=today, **fields
    )
    newrx = root.find("Body/NewRx")
    assert newrx is not None
    allergies = _el(
        "AllergyOrAdverseEvent",
        _el(
            "Allergies",
            _el(
                "DrugProductCoded",
                _el("Code", "7980"),
                _el("Qualifier", "RXN"),
                _el("Text", "TESTCILLIN"),
            ),
            _el("ReactionCoded", _el("Text", "Hives")),
        ),
        _el("Allergies", _el("DrugProductCoded", _el("Text", "TESTSULFA"))),
    )
    newrx.insert(list(newrx).index(newrx.find("Patient")), allergies)
    medication = newrx.find("MedicationPrescribed")
    assert medication is not None
    refills = medication.find("NumberOfRefills")
    assert refills is not None
    at = list(medication).index(refills) + 1
    medication.insert(
        at,
        _el(
            "Diagnosis",
            _el("ClinicalInformationQualifier", "1"),
            _el(
                "Primary",
                _el("Code", "I10"),
                _el("Qualifier", "ABF"),
                _el("Description", "Essential (primary) hypertension"),
            ),
        ),
    )
    reply = await (await post_script(hub, to_bytes(root), await hub.sender_token())).read()
    assert b"<Status>" in reply, reply
    async with hub.db.sessions() as session:
        return (
            await session.scalars(
                select(Prescription.id).where(Prescription.message_id == message_id)
            )
        ).one()


async def test_a_staff_allergy_is_coded_seen_by_the_checks_of_a_new_prescription_and_removed(
    hub: Hub, checker: Checker
) -> None:
    first = await reviewable(hub, checker)
    tech = await staff(hub, "terry", role="technician")
    patient = (await detail(hub, tech, first))["patient_id"]
    url = f"/api/v1/patients/{patient}/allergies"
    status, body = await call(hub, "POST", url, tech, PENICILLIN)
    assert status == 200, body
    (entry,) = body["allergies"]
    assert {k: entry[k] for k in ("text", "code_system", "code", "reaction", "severity")} == {
        "text": "penicillin",
        "code_system": "rxnorm",
        "code": "7980",
        "reaction": "hives",
        "severity": "severe",
    }
    assert (entry["source"], entry["added_by"]) == ("staff", "terry")
    # the same code again, or the same words, changes nothing
    again = {**PENICILLIN, "allergy": "Penicillin G"}
    assert (await call(hub, "POST", url, tech, again))[1]["allergies"] == body["allergies"]

    # a new prescription of a penicillin for the patient: the profile's entry makes a finding
    second = await reviewable(hub, checker, drug_description=AMOXICILLIN)
    rx = await detail(hub, tech, second)
    assert rx["patient_id"] == patient
    allergy = [f for f in rx["findings"] if f["code"] == "DRUG_ALLERGY"]
    assert allergy
    assert allergy[0]["evidence"]["allergy"] == "penicillin"

    status, body = await call(hub, "DELETE", f"{url}/{entry['id']}", tech)
    assert (status, body) == (200, {"allergies": [], "rechecking": 2})  # both open
    assert await asyncio.to_thread(checker.check, second) is not None
    assert "DRUG_ALLERGY" not in {f["code"] for f in (await detail(hub, tech, second))["findings"]}
    assert (await call(hub, "DELETE", f"{url}/{entry['id']}", tech))[0] == 404
    assert await hub.audit_outcomes("patient.allergy.add") == ["success", "success"]
    assert await hub.audit_outcomes("patient.allergy.remove") == ["success", "not_found"]
    (added, _) = await _audit(hub, "patient.allergy.add")
    assert added.detail["code_system"] == "rxnorm"
    assert "penicillin" not in str(added.detail)
    assert "7980" not in str(added.detail)


async def test_allergy_entries_are_checked_and_stay_in_the_pharmacy(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    patient = (await detail(hub, alice, rx_id))["patient_id"]
    url = f"/api/v1/patients/{patient}/allergies"
    refused = [
        {"allergy": "penicillin", "code_system": "rxnorm"},  # a coded entry without its code
        {"allergy": "penicillin", "code": "7980"},  # free text with a code
        {"allergy": "  "},
    ]
    for body in refused:
        status, answer = await call(hub, "POST", url, alice, body)
        assert (status, answer["code"]) == (422, "allergy_invalid"), body
    for body in (
        {"allergy": "penicillin", "severity": "terrible"},
        {"allergy": "penicillin", "code_system": "icd"},
        {"allergy": 7},
    ):
        assert (await call(hub, "POST", url, alice, body))[0] == 400, body
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy="7654321")
    assert (await call(hub, "POST", url, mallory, PENICILLIN))[0] == 404
    _, mine = await call(hub, "POST", url, alice, PENICILLIN)
    entry = mine["allergies"][0]["id"]
    assert (await call(hub, "DELETE", f"{url}/{entry}", mallory))[0] == 404
    assert (await call(hub, "DELETE", f"{url}/not-a-uuid", alice))[0] == 404
    assert (await call(hub, "GET", f"/api/v1/patients/{patient}", mallory))[0] == 404
    assert await hub.audit_outcomes("patient.allergy.add") == ["not_found", "success"]
    assert await hub.audit_outcomes("patient.allergy.remove") == ["not_found", "not_found"]


async def _fill(hub: Hub, rx_id: uuid.UUID) -> uuid.UUID:
    """A handed-over fill of ``rx_id`` with its history, as dispensing writes them."""
    now = dt.datetime.now(dt.UTC)
    async with hub.db.transaction() as session:
        rx = await session.get(Prescription, rx_id)
        assert rx is not None
        fill = Fill(
            prescription_id=rx_id,
            pharmacy_id=rx.pharmacy_id,
            number=1,
            state="completed",
            quantity_owed="60",
            unit="tablet",
            quantity="60",
            days_supply=30,
            started_at=now,
            ended_at=now + dt.timedelta(milliseconds=3),
        )
        session.add(fill)
        await session.flush()
        for step, (before, after) in enumerate(
            [
                (None, "filling"),
                ("filling", "product_check"),
                ("product_check", "ready"),
                ("ready", "completed"),
            ]
        ):
            session.add(
                FillTransition(
                    fill_id=fill.id,
                    from_state=before,
                    to_state=after,
                    actor="user:test",
                    reason="synthetic",
                    at=now + dt.timedelta(milliseconds=step),
                )
            )
        return fill.id


async def test_the_profile_lists_allergies_conditions_medications_prescribers_and_fills(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await receive_full(hub)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    alice = await staff(hub, "alice")
    patient = (await detail(hub, alice, rx_id))["patient_id"]
    fill_id = await _fill(hub, rx_id)
    status, body = await call(hub, "GET", f"/api/v1/patients/{patient}", alice)
    assert status == 200, body
    sent = {a["text"]: a for a in body["allergies"]}
    assert set(sent) == {"TESTCILLIN", "TESTSULFA"}
    assert sent["TESTCILLIN"]["source"] == "prescription"
    assert (sent["TESTCILLIN"]["code_system"], sent["TESTCILLIN"]["code"]) == ("rxnorm", "7980")
    assert sent["TESTCILLIN"]["reaction"] == "Hives"
    assert sent["TESTSULFA"]["code_system"] == "free_text"
    assert sent["TESTCILLIN"]["prescription_id"] == str(rx_id)
    assert body["conditions"] == [
        {
            "code": "I10",
            "qualifier": "ABF",
            "description": "Essential (primary) hypertension",
            "prescription_ids": [str(rx_id)],
        }
    ]
    (medication,) = body["medications"]
    assert (medication["status"], medication["state"]) == ("pending", "awaiting_review")
    assert medication["prescriber"]["npi"] == "1111111112"
    assert medication["prescriber"]["name"]
    assert medication["prescriber"]["communication_numbers"]
    (fill,) = body["fills"]
    assert (fill["id"], fill["state"], fill["quantity"]) == (str(fill_id), "completed", "60")

    # a staff entry of the same allergen hides the prescription's copy
    url = f"/api/v1/patients/{patient}/allergies"
    status, _ = await call(
        hub, "POST", url, alice, {"allergy": "testcillin", "code_system": "rxnorm", "code": "7980"}
    )
    assert status == 200
    body = (await call(hub, "GET", f"/api/v1/patients/{patient}", alice))[1]
    assert sorted((a["text"], a["source"]) for a in body["allergies"]) == [
        ("TESTSULFA", "prescription"),
        ("testcillin", "staff"),
    ]


async def test_the_timeline_is_newest_first_paged_and_the_pharmacys_only(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    patient = (await detail(hub, alice, rx_id))["patient_id"]
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    status, _ = await call(
        hub, "POST", f"/api/v1/prescriptions/{rx_id}/notes", alice, {"text": "Called the patient"}
    )
    assert status in (200, 201)
    url = f"/api/v1/patients/{patient}/allergies"
    _, added = await call(hub, "POST", url, alice, {"allergy": "latex", "severity": "mild"})
    await call(hub, "DELETE", f"{url}/{added['allergies'][0]['id']}", alice)
    await _fill(hub, rx_id)

    timeline = f"/api/v1/patients/{patient}/timeline"
    status, whole = await call(hub, "GET", timeline, alice)
    assert status == 200, whole
    items = whole["items"]
    assert whole["next"] is None
    kinds = [e["kind"] for e in items]
    assert (kinds[0], items[0]["status"]) == ("fill", "completed")  # the pick-up, last
    assert {"allergy_added", "allergy_removed", "note", "prescription"} <= set(kinds)
    assert [e["at"] for e in items] == sorted((e["at"] for e in items), reverse=True)
    assert items[-1]["kind"] == "prescription"
    assert items[-1]["status"] == "received"
    assert "completed" in [e["status"] for e in items if e["kind"] == "fill"]  # the pick-up
    note = next(e for e in items if e["kind"] == "note")
    assert (note["text"], note["actor"]) == ("Called the patient", "alice")

    pages: list[dict[str, Any]] = []
    params = {"limit": "3"}
    while True:
        status, page = await call(hub, "GET", timeline, alice, **params)
        assert status == 200
        pages.extend(page["items"])
        if page["next"] is None:
            break
        params = {"limit": "3", "after": page["next"]}
    assert [e["key"] for e in pages] == [e["key"] for e in items]

    assert (await call(hub, "GET", timeline, alice, after="nonsense"))[0] == 400
    assert (await call(hub, "GET", timeline, alice, limit="x"))[0] == 400
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy="7654321")
    status, missing = await call(hub, "GET", timeline, mallory)
    assert status == 404
    assert "latex" not in str(missing)
    outcomes = await hub.audit_outcomes("patient.timeline.read")
    assert outcomes[0] == "success"
    assert outcomes[-1] == "not_found"


async def test_a_patient_is_found_by_name_birth_date_and_phone_in_the_own_pharmacy_only(
    hub: Hub, checker: Checker
) -> None:
    ann = await reviewable(hub, checker, patient_last="SEARCHLAST", patient_first="ANN")
    await reviewable(
        hub, checker, patient_last="SEARCHLAST", patient_first="BOB", date_of_birth="1975-05-05"
    )
    await reviewable(hub, checker, patient_last="OTHERNAME", patient_first="CARL")
    alice = await staff(hub, "alice")
    ann_id = (await detail(hub, alice, ann))["patient_id"]
    async with hub.db.transaction() as session:
        rx = await session.get(Prescription, ann)
        assert rx is not None
        session.add(
            PatientContact(
                patient_id=uuid.UUID(ann_id),
                pharmacy_id=rx.pharmacy_id,
                kind="mobile",
                value="+15555550123",
            )
        )

    async def names(**params: str) -> list[str]:
        status, body = await call(hub, "GET", "/api/v1/patients", alice, **params)
        assert status == 200, body
        return [f"{p['name']['last']}, {p['name']['first']}" for p in body["items"]]

    assert await names(name="searchl") == ["SEARCHLAST, ANN", "SEARCHLAST, BOB"]
    assert await names(name="Searchlast, b") == ["SEARCHLAST, BOB"]
    assert await names(name="Ann Searchlast") == ["SEARCHLAST, ANN"]
    assert await names(birth_date="1975-05-05") == ["SEARCHLAST, BOB"]
    assert await names(phone="(555) 555-0123") == ["SEARCHLAST, ANN"]
    assert await names(phone="+1 555 555 0123", name="searchlast") == ["SEARCHLAST, ANN"]
    assert await names(phone="555 555 0199") == []

    status, first = await call(hub, "GET", "/api/v1/patients", alice, name="s", limit="1")
    assert status == 200
    assert first["next"]
    _, second = await call(
        hub, "GET", "/api/v1/patients", alice, name="s", limit="1", after=first["next"]
    )
    assert [p["name"]["first"] for p in first["items"] + second["items"]] == ["ANN", "BOB"]

    for params in (
        {},
        {"birth_date": "1975-13-01"},
        {"birth_date": "yesterday"},
        {"phone": "12"},
        {"name": "!!"},
        {"name": "x" * 101},
    ):
        status, body = await call(hub, "GET", "/api/v1/patients", alice, **params)
        assert (status, body["code"]) == (422, "search_invalid"), params
    assert (await call(hub, "GET", "/api/v1/patients", alice, name="s", after="zz"))[0] == 400

    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy="7654321")
    status, body = await call(hub, "GET", "/api/v1/patients", mallory, name="searchlast")
    assert (status, body["items"]) == (200, [])

    entries = await _audit(hub, "patient.search")
    assert entries[0].detail["criteria"] == ["name"]
    assert entries[0].detail["ids"]
    assert all("SEARCH" not in str(e.detail).upper() for e in entries)
    assert all("5550123" not in str(e.detail) for e in entries)
