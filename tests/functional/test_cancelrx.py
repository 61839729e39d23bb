"""A prescriber's CancelRx through the intake: stored as received, matched to its NewRx,
decided once (cancelled, or nothing changed and Denied) and acknowledged with Status."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid

import pytest
from lxml import etree
from sqlalchemy import select, update

from eprescribe.ncpdp import parse_message
from eprescribe.ncpdp.outbound import CancelRxResponse
from server.audit.models import AuditEvent
from server.outbox.models import OutboundMessage
from server.prescriptions.models import InboundMessage, Prescription
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.check_helpers import history
from tests.functional.intake_helpers import post_script
from tests.functional.test_verification import act, detail
from tests.functional.verification_helpers import receive, reviewable, staff
from tests.support.script_samples import cancelrx_xml

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
#: what verification_helpers.receive() sends beside the MessageID
ORDER = {"drug_description": "lisinopril 10 MG Oral Tablet", "written_date": TODAY}


@pytest.fixture(autouse=True)
async def one_prescriber_system(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message of a test from one prescriber system (one client): a CancelRx cancels
    only what its own client sent."""
    token = await hub.sender_token()

    async def same(self: Hub) -> str:
        return token

    monkeypatch.setattr(Hub, "sender_token", same)


async def cancel(hub: Hub, message_id: str, token: str | None = None, **fields: object) -> bytes:
    """Post a CancelRx of the order ``message_id``'s NewRx sent (same patient and drug), as
    the test's prescriber system unless ``token``; the hub's synchronous reply."""
    body = fields.pop("body", None) or cancelrx_xml(
        message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{message_id}"[:35],
        **{**ORDER, **fields},
    )
    assert isinstance(body, bytes)
    return await (await post_script(hub, body, token or await hub.sender_token())).read()


async def message_id_of(hub: Hub, rx_id: uuid.UUID) -> str:
    async with hub.db.sessions() as session:
        found = await session.scalar(
            select(Prescription.message_id).where(Prescription.id == rx_id)
        )
    assert found is not None
    return found


async def audited(hub: Hub, action: str) -> list[AuditEvent]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
        )


async def answers(hub: Hub) -> list[tuple[str | None, CancelRxResponse]]:
    """The CancelRxResponses in the outbox, oldest first, each read back with the hub's own
    parser (what it sends must be valid SCRIPT): the CancelRx each answers, and the answer."""
    async with hub.db.sessions() as session:
        rows = (
            await session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.message_type == "CancelRxResponse")
                .order_by(OutboundMessage.created_at, OutboundMessage.id)
            )
        ).all()
    read = []
    for row in rows:
        message = parse_message(row.payload)
        assert isinstance(message.body, CancelRxResponse)
        assert message.header.relates_to_message_id == row.relates_to_message_id
        read.append((row.relates_to_message_id, message.body))
    return read


def code_of(reply: bytes) -> str | None:
    root = etree.fromstring(reply)
    return root.findtext(".//{*}Status/{*}Code") or root.findtext(".//{*}Error/{*}Code")


async def test_a_cancel_of_a_prescription_being_verified_ends_it_and_its_claim(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200
    reply = await cancel(hub, await message_id_of(hub, rx_id))
    assert code_of(reply) == "000", reply
    assert await history(hub, rx_id) == [
        (None, "received"),
        ("received", "checking"),
        ("checking", "awaiting_review"),
        ("awaiting_review", "in_review"),
        ("in_review", "cancelled"),
    ]
    seen = await detail(hub, alice, rx_id)
    assert (seen["state"], seen["claim"]) == ("cancelled", None)
    assert "cancelled by the prescriber" in seen["history"][-1]["reason"]
    # the pharmacist who held it can no longer act on it
    status, _ = await act(hub, alice, rx_id, "approve", {})
    assert status == 409
    (entry,) = await audited(hub, "prescription.cancel")
    assert (entry.resource_id, entry.outcome) == (str(rx_id), "success")
    assert entry.detail["transaction"] == "CancelRx"
    # the CancelRx is kept exactly as received
    async with hub.db.sessions() as session:
        stored = (
            await session.scalars(
                select(InboundMessage).where(InboundMessage.transaction == "CancelRx")
            )
        ).one()
    assert stored.sha256 == hashlib.sha256(stored.raw).hexdigest()
    assert stored.message_id == entry.detail["message_id"]
    # one answer, Approved, to that CancelRx
    assert await answers(hub) == [(stored.message_id, CancelRxResponse.approve())]


async def test_a_cancel_that_names_no_prescription_changes_nothing_and_is_denied(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await reviewable(hub, checker)
    own = await message_id_of(hub, rx_id)
    # an unknown order number; the right number with another patient; with another drug
    for fields, why in (
        ({"body": cancelrx_xml(order_number="ORD-NOBODY", **ORDER)}, "unknown_number"),
        ({"patient_last": "SOMEONEELSE"}, "not_confirmed"),
        # the same description, another product: the NDC decides when both have one
        ({"ndc": "99999000202"}, "not_confirmed"),
    ):
        reply = await cancel(hub, own, **fields)
        assert code_of(reply) == "000", reply  # received and stored: the answer is Denied
        entry = (await audited(hub, "script.cancel"))[-1]
        assert (entry.outcome, entry.detail["denied"], entry.detail["why"]) == (
            "denied",
            "not_found",
            why,
        )
    assert len(await audited(hub, "script.cancel")) == 3
    assert not await audited(hub, "prescription.cancel")
    denied = await answers(hub)
    assert [answer for _, answer in denied] == [
        CancelRxResponse.deny("AP", reason="No prescription matches the cancel request.")
    ] * 3
    assert (await history(hub, rx_id))[-1] == ("checking", "awaiting_review")


async def test_a_cancel_after_the_prescription_ended_or_was_dispensed_is_denied(
    hub: Hub, checker: Checker
) -> None:
    rejected = await reviewable(hub, checker, prescriber_npi="1234567898")
    alice = await staff(hub, "alice")
    await act(hub, alice, rejected, "claim")
    status, _ = await act(
        hub, alice, rejected, "reject", {"reason_code": "other", "text": "Invalid prescriber NPI"}
    )
    assert status == 200
    dispensed = await reviewable(hub, checker)
    # handed over once (the fill flow itself: test_fills)
    async with hub.db.transaction() as session:
        await session.execute(
            update(Prescription)
            .where(Prescription.id == dispensed)
            .values(state="completed", fills_dispensed=1)
        )
    for rx_id, denial, state, code in (
        (rejected, "already_ended", "rejected", "AP"),
        (dispensed, "already_dispensed", "completed", "AH"),
    ):
        reply = await cancel(hub, await message_id_of(hub, rx_id))
        assert code_of(reply) == "000", reply
        entry = (await audited(hub, "prescription.cancel"))[-1]
        assert (entry.resource_id, entry.outcome) == (str(rx_id), "denied")
        assert (entry.detail["denied"], entry.detail["state"]) == (denial, state)
        _, answer = (await answers(hub))[-1]
        assert (answer.approved, answer.reason_codes) == (False, (code,))
    assert (await detail(hub, alice, rejected))["state"] == "rejected"


async def test_a_resent_cancel_is_acknowledged_again_and_decided_once(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await receive(hub)
    body = cancelrx_xml(
        message_id="CANCEL-ONCE", order_number=f"ORD-{await message_id_of(hub, rx_id)}", **ORDER
    )
    token = await hub.sender_token()
    for _ in range(2):
        assert code_of(await cancel(hub, "", token, body=body)) == "000"
    assert len(await audited(hub, "prescription.cancel")) == 1
    assert await answers(hub) == [("CANCEL-ONCE", CancelRxResponse.approve())]
    assert (await history(hub, rx_id))[-1] == ("received", "cancelled")
    # the same MessageID with other bytes is a duplicate, refused
    other = cancelrx_xml(message_id="CANCEL-ONCE", order_number="ORD-SOMETHING-ELSE", **ORDER)
    reply = await cancel(hub, "", token, body=other)
    assert code_of(reply) == "900"
    assert b"<DescriptionCode>220</DescriptionCode>" in reply
    # a cancelled prescription is never checked
    assert await asyncio.to_thread(checker.check, rx_id) is None


async def test_a_pharmacist_viewing_the_prescription_sees_the_cancel_by_its_revision(
    hub: Hub, checker: Checker
) -> None:
    """The console polls a prescription's revision while showing it: unchanged until the
    prescriber's cancel, then changed with the new state. No patient data, so a hit is not
    audited; another pharmacy's ID is 404, and audited."""
    rx_id = await reviewable(hub, checker)
    alice = await staff(hub, "alice")
    assert (await act(hub, alice, rx_id, "claim"))[0] == 200

    async def revision(token: str) -> tuple[int, dict[str, str]]:
        response = await hub.client.get(
            f"/api/v1/prescriptions/{rx_id}/revision", headers={"Authorization": f"Bearer {token}"}
        )
        return response.status, await response.json()

    status, first = await revision(alice)
    assert (status, first["state"]) == (200, "in_review")
    reads = len(await audited(hub, "prescription.read"))
    assert (await revision(alice))[1] == first
    assert code_of(await cancel(hub, await message_id_of(hub, rx_id))) == "000"
    status, after = await revision(alice)
    assert (status, after["state"]) == (200, "cancelled")
    assert after["revision"] != first["revision"]
    assert len(await audited(hub, "prescription.read")) == reads
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    status, _ = await revision(mallory)
    assert status == 404
    (miss,) = [e for e in await audited(hub, "prescription.read") if e.outcome == "not_found"]
    assert miss.resource_id == str(rx_id)


async def test_another_client_or_a_test_message_cancels_nothing(hub: Hub, checker: Checker) -> None:
    """A CancelRx from another client naming the same From, order, patient and drug finds
    nothing (it is answered Denied); a test CancelRx is kept and acknowledged, changes nothing
    and is owed no answer."""
    rx_id = await reviewable(hub, checker)
    own = await message_id_of(hub, rx_id)
    stranger = await hub.token(await hub.machine_client("script:send"))
    assert code_of(await cancel(hub, own, stranger)) == "000"
    (entry,) = await audited(hub, "script.cancel")
    assert (entry.outcome, entry.detail["why"]) == ("denied", "unknown_number")
    test = cancelrx_xml(message_id="CANCEL-TEST", order_number=f"ORD-{own}"[:35], **ORDER)
    # Header/TestMessage in its place, right after SenderSoftware
    test = test.replace(b"</SenderSoftware>", b"</SenderSoftware><TestMessage>1</TestMessage>", 1)
    assert code_of(await cancel(hub, "", body=test)) == "000"
    entry = (await audited(hub, "script.cancel"))[-1]
    assert (entry.outcome, entry.detail["test"]) == ("test", True)
    assert not await audited(hub, "prescription.cancel")
    assert [answer for _, answer in await answers(hub)] == [
        CancelRxResponse.deny("AP", reason="No prescription matches the cancel request.")
    ]
    assert (await history(hub, rx_id))[-1] == ("checking", "awaiting_review")
