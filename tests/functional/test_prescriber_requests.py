"""What the pharmacy asks the prescriber, through ``/api/v1``: every kind of change request
(``clarify``) and renewal requests (``request_renewal``); each message is written to the outbox
with its decision, read back with the hub's own parser, and recorded with its MessageID and
code for the prescriber's answer to be matched."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from eprescribe.ncpdp import parse_message
from eprescribe.ncpdp.outbound import ChangeRequestCode, RxChangeRequest, RxRenewalRequest
from server import audit
from server.audit.models import AuditEvent
from server.outbox.models import OutboundMessage
from server.prescriptions.models import ClarificationRequest, Prescription
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.verification_helpers import bearer, receive, reviewable, staff

PROHIBITED = {"Body/NewRx": "<ProhibitRenewalRequest>true</ProhibitRenewalRequest>"}
ATORVASTATIN = {
    "drug": "atorvastatin 20 MG Oral Tablet",
    "quantity": 30,
    "quantity_unit": "C48542",
    "sig": "Take 1 tablet by mouth daily",
    "days_supply": 30,
    "refills": 2,
}


async def pharmacist(hub: Hub) -> str:
    """The test pharmacy and its pharmacist alice's token."""
    await hub.pharmacy()
    return await staff(hub, "alice")


async def act(
    hub: Hub, token: str, rx_id: object, action: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/prescriptions/{rx_id}/{action}", json=body or {}, headers=bearer(token)
    )
    return response.status, await response.json()


async def detail(hub: Hub, token: str, rx_id: object) -> dict[str, Any]:
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(token))
    assert response.status == 200
    return dict(await response.json())


async def claimed(hub: Hub, checker: Checker, token: str, **message: object) -> uuid.UUID:
    rx_id = await reviewable(hub, checker, **message)
    assert (await act(hub, token, rx_id, "claim"))[0] == 200
    return rx_id


async def approved(hub: Hub, checker: Checker, token: str, **message: object) -> uuid.UUID:
    """A prescription approved (every warning overridden)."""
    rx_id = await claimed(hub, checker, token, **message)
    findings = (await detail(hub, token, rx_id))["findings"]
    assert not [f for f in findings if f["severity"] == "hard_stop"]
    overrides = {f["code"]: "checked" for f in findings if f["severity"] == "warning"}
    status, body = await act(hub, token, rx_id, "approve", {"overrides": overrides})
    assert (status, body["state"]) == (200, "approved"), body
    return rx_id


async def sent(hub: Hub, rx_id: uuid.UUID) -> tuple[OutboundMessage, ClarificationRequest]:
    """The one message about ``rx_id`` and the request it carries."""
    async with hub.db.sessions() as session:
        (message,) = await session.scalars(
            select(OutboundMessage).where(OutboundMessage.prescription_id == rx_id)
        )
        (request,) = await session.scalars(
            select(ClarificationRequest).where(ClarificationRequest.prescription_id == rx_id)
        )
        rx = await session.get(Prescription, rx_id)
    assert rx is not None
    assert request.outbound_message_id == message.id
    assert request.message_id == message.message_id  # what an answer relates to
    assert message.state == "pending"
    assert message.relates_to_message_id == rx.message_id
    return message, request


@pytest.mark.parametrize(
    ("body", "code", "sub_codes", "note"),
    [
        (
            {
                "request_code": "G",
                "text": "Plan covers the generic.",
                "medications": [ATORVASTATIN],
            },
            ChangeRequestCode.GENERIC_SUBSTITUTION,
            (),
            "Generic substitution: Plan covers the generic.",
        ),
        (
            {
                "request_code": "T",
                "reason_code": "drug",
                "text": "Formulary alternative.",
                "medications": [
                    ATORVASTATIN,
                    {**ATORVASTATIN, "drug": "simvastatin 20 MG Oral Tablet"},
                ],
            },
            ChangeRequestCode.THERAPEUTIC_INTERCHANGE,
            (),
            "Therapeutic interchange: Formulary alternative.",
        ),
        (
            {"request_code": "P", "text": "The plan requires prior authorization."},
            ChangeRequestCode.PRIOR_AUTHORIZATION,
            (),
            "Prior authorization: The plan requires prior authorization.",
        ),
        (
            {"reason_code": "strength", "text": "10 mg or 20 mg?"},  # no request_code: S
            ChangeRequestCode.SCRIPT_CLARIFICATION,
            (),
            "Clarification (strength): 10 mg or 20 mg?",
        ),
        (
            {"request_code": "D", "reason_code": "dose", "text": "Dose above usual."},
            ChangeRequestCode.DRUG_USE_EVALUATION,
            (),
            "Drug use evaluation: Dose above usual.",
        ),
        (
            {
                "request_code": "OS",
                "text": "Back in stock in 2 weeks.",
                "medications": [ATORVASTATIN],
            },
            ChangeRequestCode.OUT_OF_STOCK,
            (),
            "Out of stock: Back in stock in 2 weeks.",
        ),
        (
            {"request_code": "U", "text": "Please confirm.", "sub_codes": ["G", "A"]},
            ChangeRequestCode.PRESCRIBER_AUTHORIZATION,
            ("A", "G"),
            "Prescriber authorization: Please confirm.",
        ),
    ],
)
async def test_each_kind_of_change_request_is_sent_as_asked(
    hub: Hub,
    checker: Checker,
    body: dict[str, Any],
    code: ChangeRequestCode,
    sub_codes: tuple[str, ...],
    note: str,
) -> None:
    alice = await pharmacist(hub)
    rx_id = await claimed(hub, checker, alice)
    status, result = await act(hub, alice, rx_id, "clarify", body)
    assert (status, result["state"], result["claim"]) == (200, "clarification_requested", None)

    message, request = await sent(hub, rx_id)
    assert (message.message_type, request.message_type) == ("RxChangeRequest", "RxChangeRequest")
    assert request.request_code == code.value
    parsed = parse_message(message.payload)  # what the hub sends is valid SCRIPT
    assert parsed.transaction == "RxChangeRequest"
    assert parsed.header.message_id == message.message_id
    assert isinstance(parsed.body, RxChangeRequest)
    assert parsed.body.request_code == code
    assert parsed.body.request_sub_codes == sub_codes
    proposed = body.get("medications", [])
    lines = parsed.body.medication_requested
    assert len(lines) == max(1, len(proposed))
    assert all(line.note == note for line in lines)
    if proposed:
        for line, asked in zip(lines, proposed, strict=True):
            assert line.drug_description == asked["drug"]
            assert line.quantity.value == Decimal(asked["quantity"])
            assert line.quantity.unit_code == asked["quantity_unit"]
            assert (line.sig_text, line.days_supply) == (asked["sig"], asked["days_supply"])
            assert line.number_of_refills == asked["refills"]
    else:  # the prescription as written
        assert lines[0].drug_description == parsed.body.medication_prescribed.drug_description

    rx = await detail(hub, alice, rx_id)
    (shown,) = rx["requests"]
    assert (shown["message_type"], shown["request_code"], shown["message_id"]) == (
        "RxChangeRequest",
        code.value,
        message.message_id,
    )
    assert shown["requested_by"] == "alice"
    assert shown["detail"]["sub_codes"] == list(sub_codes)
    assert [m["drug_description"] for m in shown["detail"]["medications"]] == [
        m["drug"] for m in proposed
    ]
    assert [(m["message_type"], m["message_id"]) for m in rx["outbound"]] == [
        ("RxChangeRequest", message.message_id)
    ]
    async with hub.db.sessions() as session:
        (entry,) = await session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_id == str(rx_id), AuditEvent.action == "prescription.clarify"
            )
        )
    assert entry.detail["request_code"] == code.value
    assert (await audit.verify(hub.db)).intact


async def test_a_change_request_the_rules_refuse_sends_nothing(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    rx_id = await claimed(hub, checker, alice)
    for body, code in (
        ({"request_code": "G", "text": "Generic?"}, "medications_required"),
        ({"request_code": "U", "text": "Confirm."}, "sub_codes_required"),
        ({"request_code": "XX", "text": "?"}, "request_code_invalid"),
        (
            {"request_code": "T", "text": "?", "medications": [{**ATORVASTATIN, "drug": "nope"}]},
            "drug_unknown",
        ),
    ):
        status, result = await act(hub, alice, rx_id, "clarify", body)
        assert (status, result["code"]) == (422, code), body
    status, result = await act(
        hub, alice, rx_id, "clarify", {"request_code": "G", "text": "?", "medications": [{}]}
    )
    assert status == 400  # the body's shape: a medication without its members
    async with hub.db.sessions() as session:
        assert list(await session.scalars(select(OutboundMessage))) == []
        rx = await session.get(Prescription, rx_id)
    assert rx is not None
    assert rx.state == "in_review"


async def test_drug_search_feeds_the_picker(hub: Hub) -> None:
    alice = await pharmacist(hub)
    response = await hub.client.get(
        "/api/v1/drugs", params={"q": "atorvastatin 20"}, headers=bearer(alice)
    )
    assert response.status == 200
    names = [d["name"] for d in (await response.json())["items"]]
    assert "atorvastatin 20 MG Oral Tablet" in names
    assert all("atorvastatin" in n.lower() and "20" in n for n in names)
    response = await hub.client.get("/api/v1/drugs", params={"q": " "}, headers=bearer(alice))
    assert response.status == 400
    assert (await hub.client.get("/api/v1/drugs", params={"q": "ator"})).status == 401


# -- renewal requests -----------------------------------------------------------------------


async def test_a_renewal_is_requested_for_an_approved_prescription_without_refills(
    hub: Hub, checker: Checker
) -> None:
    alice = await pharmacist(hub)
    rx_id = await approved(hub, checker, alice, refills="0")
    before = await detail(hub, alice, rx_id)
    assert before["renewal"] == {
        "allowed": True,
        "code": None,
        "reason": None,
        "refills": 0,
        "confirm_refills_used": False,
    }
    status, result = await act(
        hub, alice, rx_id, "request_renewal", {"refills": 3, "note": "Patient is stable."}
    )
    assert (status, result["state"]) == (200, "approved")  # the state stays

    message, request = await sent(hub, rx_id)
    assert (message.message_type, request.message_type, request.request_code) == (
        "RxRenewalRequest",
        "RxRenewalRequest",
        None,
    )
    assert (request.reason_code, request.text) == ("renewal", "Patient is stable.")
    parsed = parse_message(message.payload)
    assert parsed.transaction == "RxRenewalRequest"
    assert isinstance(parsed.body, RxRenewalRequest)
    assert parsed.header.message_id == message.message_id
    assert parsed.header.relates_to_message_id is None  # a new exchange
    dispensed = parsed.body.medication_dispensed
    assert dispensed.pharmacy_requested_refills == 3
    assert dispensed.note == "Patient is stable."
    assert parsed.body.medication_prescribed is not None
    assert dispensed.drug_description == parsed.body.medication_prescribed.drug_description
    assert parsed.body.medication_prescribed.number_of_refills == 0

    rx = await detail(hub, alice, rx_id)
    assert [(r["message_type"], r["message_id"]) for r in rx["requests"]] == [
        ("RxRenewalRequest", message.message_id)
    ]
    assert [h["to"] for h in rx["history"]][-1] == "approved"
    async with hub.db.sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.resource_id == str(rx_id), AuditEvent.outcome == "success")
                .order_by(AuditEvent.seq)
            )
        )
    assert "prescription.request_renewal" in actions


async def test_refills_written_must_be_stated_used(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    rx_id = await approved(hub, checker, alice, refills="2")
    assert (await detail(hub, alice, rx_id))["renewal"]["confirm_refills_used"] is True
    status, result = await act(hub, alice, rx_id, "request_renewal", {})
    assert (status, result["code"]) == (422, "refills_remaining")
    status, _ = await act(hub, alice, rx_id, "request_renewal", {"refills_used": True})
    assert status == 200
    message, request = await sent(hub, rx_id)
    assert request.detail == {"refills": None, "refills_used_stated": True}
    parsed = parse_message(message.payload)
    assert isinstance(parsed.body, RxRenewalRequest)
    assert parsed.body.medication_dispensed.pharmacy_requested_refills is None


async def test_a_prohibited_renewal_is_refused_and_nothing_is_sent(
    hub: Hub, checker: Checker
) -> None:
    alice = await pharmacist(hub)
    rx_id = await approved(hub, checker, alice, refills="0", append=PROHIBITED)
    renewal = (await detail(hub, alice, rx_id))["renewal"]
    assert (renewal["allowed"], renewal["code"]) == (False, "renewal_prohibited")
    status, result = await act(hub, alice, rx_id, "request_renewal", {"refills_used": True})
    assert (status, result["code"]) == (422, "renewal_prohibited")
    async with hub.db.sessions() as session:
        assert list(await session.scalars(select(OutboundMessage))) == []
        refused = list(
            await session.scalars(
                select(AuditEvent.outcome).where(
                    AuditEvent.resource_id == str(rx_id),
                    AuditEvent.action == "prescription.request_renewal",
                )
            )
        )
    assert refused == ["refused"]


async def test_renewal_needs_an_approved_prescription_and_a_pharmacist(
    hub: Hub, checker: Checker
) -> None:
    alice = await pharmacist(hub)
    terry = await staff(hub, "terry", "technician")
    rx_id = await claimed(hub, checker, alice, refills="0")
    renewal = (await detail(hub, alice, rx_id))["renewal"]
    assert (renewal["allowed"], renewal["code"]) == (False, "wrong_state")
    status, result = await act(hub, alice, rx_id, "request_renewal", {})
    assert (status, result["code"]) == (409, "wrong_state")
    status, result = await act(hub, terry, rx_id, "request_renewal", {})
    assert (status, result["code"]) == (403, "forbidden")

    received = await receive(hub, refills="0")  # not checked yet
    status, result = await act(hub, alice, received, "request_renewal", {})
    assert (status, result["code"]) == (409, "wrong_state")
    async with hub.db.sessions() as session:
        assert list(await session.scalars(select(OutboundMessage))) == []


async def test_other_pharmacies_get_404_for_requests(hub: Hub, checker: Checker) -> None:
    alice = await pharmacist(hub)
    rx_id = await approved(hub, checker, alice, refills="0")
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    for action, body in (
        ("request_renewal", {}),
        ("clarify", {"request_code": "P", "text": "PA?"}),
    ):
        status, result = await act(hub, mallory, rx_id, action, body)
        assert (status, result["code"]) == (404, "not_found"), action
    async with hub.db.sessions() as session:
        assert list(await session.scalars(select(OutboundMessage))) == []
