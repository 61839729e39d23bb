"""The verification workflow through ``/api/v1``: queue, claim, approve, reject, clarify, notes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server import audit
from server.audit.models import AuditEvent
from server.outbox.models import OutboundMessage
from server.prescriptions.models import ClarificationRequest, Prescription
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.verification_helpers import bearer, receive, reviewable, staff

#: a lisinopril order with an invalid NPI: one hard stop
HARD_STOP = {"prescriber_npi": "1234567898"}


async def act(
    hub: Hub, token: str, rx_id: object, action: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/prescriptions/{rx_id}/{action}",
        json=body if body is not None else {},
        headers=bearer(token),
    )
    return response.status, await response.json()


async def detail(hub: Hub, token: str, rx_id: object) -> dict[str, Any]:
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(token))
    assert response.status == 200
    return dict(await response.json())


async def queue(hub: Hub, token: str, **params: str) -> list[dict[str, Any]]:
    response = await hub.client.get("/api/v1/prescriptions", params=params, headers=bearer(token))
    assert response.status == 200, await response.text()
    return list((await response.json())["items"])


async def test_claim_then_approve_with_override_reasons(hub: Hub, checker: Checker) -> None:
    # a drug the reference does not know: a warning to override, no hard stop
    rx_id = await reviewable(hub, checker, drug_description="TESTDRUG 10 MG ORAL TABLET")
    alice = await staff(hub, "alice")
    findings = (await detail(hub, alice, rx_id))["findings"]
    warnings = sorted({f["code"] for f in findings if f["severity"] == "warning"})
    assert warnings
    assert not [f for f in findings if f["severity"] == "hard_stop"]

    status, body = await act(hub, alice, rx_id, "approve", {})
    assert (status, body["code"]) == (409, "claim_required")

    status, body = await act(hub, alice, rx_id, "claim")
    assert status == 200
    assert body["state"] == "in_review"
    assert body["claim"]["until"]

    status, body = await act(hub, alice, rx_id, "approve", {"overrides": {}})
    assert (status, body["code"]) == (422, "override_reasons_missing")
    assert body["codes"] == warnings
    status, body = await act(
        hub, alice, rx_id, "approve", {"overrides": {**dict.fromkeys(warnings, "ok"), "X": "y"}}
    )
    assert (status, body["code"], body["codes"]) == (422, "unknown_overrides", ["X"])

    overrides = {code: f"checked {code} with the prescriber by phone" for code in warnings}
    status, body = await act(hub, alice, rx_id, "approve", {"overrides": overrides})
    assert status == 200, body
    assert (body["state"], body["claim"]) == ("approved", None)

    rx = await detail(hub, alice, rx_id)
    assert [(h["from"], h["to"]) for h in rx["history"]] == [
        (None, "received"),
        ("received", "checking"),
        ("checking", "awaiting_review"),
        ("awaiting_review", "in_review"),
        ("in_review", "approved"),
    ]
    approval = rx["history"][-1]
    assert approval["actor"].startswith("user:")
    for code in warnings:
        assert f"override {code}: checked {code}" in approval["reason"]
    async with hub.db.sessions() as session:
        events = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.outcome, AuditEvent.actor, AuditEvent.ip)
                .where(AuditEvent.resource_id == str(rx_id))
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [(e.action, e.outcome) for e in events] == [
        ("prescription.receive", "success"),
        ("prescription.check", "success"),
        ("prescription.read", "success"),
        ("prescription.approve", "refused"),
        ("prescription.claim", "success"),
        ("prescription.approve", "refused"),
        ("prescription.approve", "refused"),
        ("prescription.approve", "success"),
        ("prescription.read", "success"),
    ]
    assert all(e.actor.startswith("user:") and e.ip for e in events[2:])
    assert (await audit.verify(hub.db)).intact


async def test_hard_stops_block_approval(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker, **HARD_STOP)
    alice = await staff(hub, "alice")
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    status, body = await act(hub, alice, rx_id, "approve", {"overrides": {"NPI_INVALID": "ok"}})
    assert (status, body["code"], body["codes"]) == (422, "hard_stops", ["NPI_INVALID"])
    assert (await detail(hub, alice, rx_id))["state"] == "in_review"


async def test_a_second_claimer_gets_409_and_sees_who(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker)
    alice, bob = await staff(hub, "alice"), await staff(hub, "bob")
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    status, body = await act(hub, bob, rx_id, "claim")
    assert (status, body["code"]) == (409, "claimed_by_other")
    (item,) = await queue(hub, bob)
    assert item["claim"]["username"] == "alice"
    status, body = await act(hub, bob, rx_id, "reject", {"reason_code": "other", "text": "no"})
    assert (status, body["code"]) == (409, "claimed_by_other")
    # the claim can be renewed by its holder and released back to the queue
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    status, body = await act(hub, alice, rx_id, "release")
    assert (status, body["state"], body["claim"]) == (200, "awaiting_review", None)
    assert (await act(hub, bob, rx_id, "claim"))[0] == 200


async def test_an_expired_claim_may_be_taken_over(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker)
    alice, bob = await staff(hub, "alice"), await staff(hub, "bob")
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    async with hub.db.transaction() as session:
        rx = await session.get(Prescription, rx_id)
        assert rx is not None
        assert rx.claimed_until is not None
        rx.claimed_until = rx.received_at  # long past
    assert (await queue(hub, bob))[0]["claim"] is None
    status, body = await act(hub, bob, rx_id, "claim")
    assert status == 200
    assert body["state"] == "in_review"
    status, body = await act(hub, alice, rx_id, "approve", {})
    assert (status, body["code"]) == (409, "claimed_by_other")


async def test_reject_and_clarify_need_reason_codes(hub: Hub, checker: Checker) -> None:
    first, second = await reviewable(hub, checker), await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    for rx_id in (first, second):
        assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    status, body = await act(hub, alice, first, "reject", {"reason_code": "bad", "text": "x"})
    assert (status, body["code"]) == (422, "reason_code_invalid")
    status, body = await act(hub, alice, first, "reject", {"reason_code": "dose", "text": "  "})
    assert (status, body["code"]) == (422, "reason_required")
    status, body = await act(
        hub, alice, first, "reject", {"reason_code": "dose", "text": "Twice the usual dose."}
    )
    assert (status, body["state"]) == (200, "rejected")
    assert (await act(hub, alice, first, "claim"))[1]["code"] == "wrong_state"

    text = "Please confirm the strength: 10 mg or 20 mg?"
    status, body = await act(
        hub, alice, second, "clarify", {"reason_code": "strength", "text": text}
    )
    assert (status, body["state"]) == (200, "clarification_requested")
    async with hub.db.sessions() as session:
        (request,) = await session.scalars(select(ClarificationRequest))
    assert (request.prescription_id, request.reason_code, request.text) == (
        second,
        "strength",
        text,
    )
    async with hub.db.sessions() as session:
        message = await session.get(OutboundMessage, request.outbound_message_id)
    assert message is not None  # queued for delivery, in the same unit of work
    assert (message.prescription_id, message.message_type, message.state) == (
        second,
        "RxChangeRequest",
        "pending",
    )
    history = (await detail(hub, alice, second))["history"]
    assert history[-1]["reason"] == f"clarification requested (strength): {text}"


async def test_queue_filters_and_stat_first(hub: Hub, checker: Checker) -> None:
    plain = await reviewable(hub, checker)
    blocked = await reviewable(hub, checker, **HARD_STOP)
    stat = await reviewable(hub, checker, urgent=True)
    controlled = await reviewable(
        hub, checker, controlled=True, drug_description="oxycodone hydrochloride 5 MG Oral Tablet"
    )
    alice = await staff(hub, "alice")
    order = [item["id"] for item in await queue(hub, alice)]
    assert order == [str(stat), str(plain), str(blocked), str(controlled)]
    assert [i["id"] for i in await queue(hub, alice, urgent="true")] == [str(stat)]
    assert [i["id"] for i in await queue(hub, alice, controlled="true")] == [str(controlled)]
    hard = {i["id"] for i in await queue(hub, alice, hard_stops="true")}
    assert str(blocked) in hard
    assert str(plain) not in hard
    response = await hub.client.get(
        "/api/v1/prescriptions", params={"urgent": "yes"}, headers=bearer(alice)
    )
    assert response.status == 400


async def test_controlled_substances_need_the_permission(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(
        hub, checker, controlled=True, drug_description="oxycodone hydrochloride 5 MG Oral Tablet"
    )
    findings = (await detail(hub, await staff(hub, "reader"), rx_id))["findings"]
    overrides = {f["code"]: "reviewed" for f in findings if f["severity"] == "warning"}
    hard = [f["code"] for f in findings if f["severity"] == "hard_stop"]
    alice = await staff(hub, "alice")
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    status, body = await act(hub, alice, rx_id, "approve", {"overrides": overrides})
    assert (status, body["code"]) == (403, "controlled_substance_permission")
    await act(hub, alice, rx_id, "release")
    carol = await staff(hub, "carol", controlled=True)
    assert (await act(hub, carol, rx_id, "claim"))[0] == 200
    status, body = await act(hub, carol, rx_id, "approve", {"overrides": overrides})
    assert status == (422 if hard else 200), body


async def test_technicians_read_and_note_but_do_not_verify(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker)
    tech = await staff(hub, "terry", "technician")
    assert len(await queue(hub, tech)) == 1
    for action in ("claim", "approve", "reject", "clarify", "release"):
        status, body = await act(hub, tech, rx_id, action)
        assert (status, body["code"]) == (403, "forbidden"), action
    status, _ = await act(hub, tech, rx_id, "notes", {"text": "Patient called: picks up at 5."})
    assert status == 200
    notes = (await detail(hub, tech, rx_id))["notes"]
    assert [(n["author"], n["text"]) for n in notes] == [
        ("terry", "Patient called: picks up at 5.")
    ]


async def test_other_pharmacies_get_404_for_everything(hub: Hub, checker: Checker) -> None:
    rx_id = await reviewable(hub, checker)
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"], controlled=True)
    assert await queue(hub, mallory) == []
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(mallory))
    assert response.status == 404
    for action in ("claim", "approve", "reject", "clarify", "notes", "release"):
        status, body = await act(
            hub, mallory, rx_id, action, {"reason_code": "other", "text": "x", "overrides": {}}
        )
        assert (status, body["code"]) == (404, "not_found"), action
        assert "TESTPATIENT" not in str(body)
    async with hub.db.sessions() as session:
        rx = await session.get(Prescription, rx_id)
        assert rx is not None
        assert rx.state == "awaiting_review"
        refused = list(
            await session.scalars(
                select(AuditEvent.outcome).where(
                    AuditEvent.actor.like("user:%"), AuditEvent.resource_id == str(rx_id)
                )
            )
        )
    assert set(refused) == {"not_found"}
    assert len(refused) == 7


async def test_disabled_users_lose_access_at_once(hub: Hub, checker: Checker) -> None:
    from server import users

    await receive(hub)
    alice = await staff(hub, "alice")
    assert len(await queue(hub, alice)) == 1
    await users.disable_user(hub.db, "alice")
    response = await hub.client.get("/api/v1/prescriptions", headers=bearer(alice))
    assert response.status == 401


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"reason_code=dose", "application/x-www-form-urlencoded", 415),
        (b'{"text": "' + b"x" * 20000 + b'"}', "application/json", 413),
    ],
)
async def test_bad_bodies_are_clear_errors(
    hub: Hub, checker: Checker, body: bytes, content_type: str, status: int
) -> None:
    rx_id = await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    response = await hub.client.post(
        f"/api/v1/prescriptions/{rx_id}/notes",
        data=body,
        headers={**bearer(alice), "Content-Type": content_type},
    )
    assert response.status == status
    assert response.content_type == "application/problem+json"
