"""A prescriber's answers to the hub's requests through the intake: an RxChangeResponse or an
RxRenewalResponse matched to its request by RelatesToMessageID, stored as received, applied
once through the prescription rules (a new prescription linked and checked, the original
ended or sent back to the pharmacist), audited, and acknowledged with Status."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

from eprescribe.ncpdp import parse_message
from eprescribe.ncpdp.outbound import MedicationLine, RxChangeRequest, rx_renewal_request
from server.audit.models import AuditEvent
from server.outbox.models import OutboundMessage
from server.prescriptions import outbound
from server.prescriptions.models import InboundMessage, PrescriberAnswer, Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.check_helpers import history
from tests.functional.intake_helpers import post_script
from tests.functional.test_verification import act, detail
from tests.functional.verification_helpers import staff
from tests.support.script_samples import newrx_xml, response_xml

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
NOW = f"{TODAY}T00:00:00Z"
#: the prescriber system's Header/From in every sample (newrx_tree's default)
PRESCRIBER = "9990001"
QUESTION = "Is 10 mg meant? The usual dose is 5 mg."
CHECKED = [(None, "received"), ("received", "checking"), ("checking", "awaiting_review")]
CLARIFIED = [
    *CHECKED,
    ("awaiting_review", "in_review"),
    ("in_review", "clarification_requested"),
]


@pytest.fixture
def checker(settings: Settings) -> Iterator[Checker]:
    checker = Checker.from_settings(settings)
    yield checker
    checker.close()


@dataclass
class Scene:
    """One prescriber system (its token), its prescription in the test pharmacy, and a
    pharmacist."""

    hub: Hub
    checker: Checker
    token: str
    pharmacist: str
    rx_id: uuid.UUID
    message_id: str

    async def post(self, body: bytes, token: str | None = None) -> bytes:
        return await (await post_script(self.hub, body, token or self.token)).read()


async def scene(hub: Hub, checker: Checker, **newrx: Any) -> Scene:
    """A NewRx from a prescriber system, checked, and a pharmacist of the pharmacy."""
    await hub.pharmacy()
    token = await hub.sender_token()
    message_id = uuid.uuid4().hex[:20]
    fields: dict[str, Any] = {
        "drug_description": "lisinopril 10 MG Oral Tablet",
        "written_date": TODAY,
        "sent_time": NOW,
        **newrx,
    }
    reply = await (await post_script(hub, newrx_xml(message_id=message_id, **fields), token)).read()
    assert code_of(reply) == "000", reply
    async with hub.db.sessions() as session:
        rx_id = (
            await session.scalars(
                select(Prescription.id).where(Prescription.message_id == message_id)
            )
        ).one()
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    pharmacist = await staff(hub, f"pharmacist-{uuid.uuid4().hex[:6]}", controlled=True)
    return Scene(hub, checker, token, pharmacist, rx_id, message_id)


async def clarified(s: Scene) -> str:
    """The pharmacist asks the prescriber (an RxChangeRequest); its MessageID."""
    assert (await act(s.hub, s.pharmacist, s.rx_id, "claim"))[0] == 200
    status, body = await act(
        s.hub, s.pharmacist, s.rx_id, "clarify", {"reason_code": "strength", "text": QUESTION}
    )
    assert status == 200, body
    (request,) = await requests(s.hub, s.rx_id, "RxChangeRequest")
    return request.message_id


async def renewal_requested(s: Scene) -> str:
    """An RxRenewalRequest about the prescription written to the outbox, as the console's
    renewal request does (built by the hub's own builder); its MessageID."""

    def write(session: Any) -> None:
        def build(original: Any, message_id: str, now: dt.datetime) -> bytes:
            return rx_renewal_request(
                original,
                MedicationLine.of(original.medication),
                message_id=message_id,
                sent_time=now,
                software=outbound.SOFTWARE,
            )

        outbound.send(session, s.rx_id, "RxRenewalRequest", build, dt.datetime.now(dt.UTC))

    async with s.hub.db.transaction() as session:
        await session.run_sync(write)
    (request,) = await requests(s.hub, s.rx_id, "RxRenewalRequest")
    return request.message_id


async def requests(hub: Hub, rx_id: uuid.UUID, message_type: str) -> list[OutboundMessage]:
    """The hub's messages of ``message_type`` about ``rx_id``, each read back with the hub's
    own parser (what it sends must be valid SCRIPT)."""
    async with hub.db.sessions() as session:
        rows = list(
            await session.scalars(
                select(OutboundMessage)
                .where(
                    OutboundMessage.prescription_id == rx_id,
                    OutboundMessage.message_type == message_type,
                )
                .order_by(OutboundMessage.position)
            )
        )
    for row in rows:
        message = parse_message(row.payload)
        assert message.transaction == message_type
        if message_type == "RxChangeRequest":
            assert isinstance(message.body, RxChangeRequest)
    return rows


def code_of(reply: bytes) -> str | None:
    """The Status or Error code of a synchronous reply, after checking it is valid SCRIPT."""
    message = parse_message(reply)
    assert message.transaction in ("Status", "Error"), reply
    root = etree.fromstring(reply)
    return root.findtext(".//Status/Code") or root.findtext(".//Error/Code")


def description_of(reply: bytes) -> tuple[str | None, str | None]:
    root = etree.fromstring(reply)
    return root.findtext(".//Error/DescriptionCode"), root.findtext(".//Error/Description")


async def replacement_of(hub: Hub, rx_id: uuid.UUID) -> uuid.UUID:
    async with hub.db.sessions() as session:
        return (
            await session.scalars(
                select(Prescription.id).where(Prescription.replaces_prescription_id == rx_id)
            )
        ).one()


async def answers(hub: Hub) -> list[PrescriberAnswer]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(select(PrescriberAnswer).order_by(PrescriberAnswer.received_at))
        )


async def audited(hub: Hub, action: str) -> list[AuditEvent]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
        )


def answer(transaction: str, relates_to: str, response: str, **fields: Any) -> bytes:
    fields.setdefault("drug_description", "lisinopril 10 MG Oral Tablet")
    fields.setdefault("written_date", TODAY)
    fields.setdefault("sent_time", NOW)
    fields.setdefault("message_id", f"ANSWER-{uuid.uuid4().hex[:12]}")
    return response_xml(transaction, response, relates_to=relates_to, **fields)


# -- RxChangeResponse --------------------------------------------------------------------------


async def test_a_change_approved_with_changes_replaces_the_prescription_with_a_checked_one(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    reply = await s.post(
        answer(
            "RxChangeResponse",
            request,
            "<ApprovedWithChanges><Note>5 mg as you said</Note></ApprovedWithChanges>",
            drug_description="lisinopril 5 MG Oral Tablet",
            request_code="S",
            quantity="30",
        )
    )
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    assert await history(hub, s.rx_id) == [*CLARIFIED, ("clarification_requested", "cancelled")]
    assert await history(hub, new_id) == [(None, "received")]
    # the worker checks it like any prescription: findings computed, in the queue
    assert await asyncio.to_thread(checker.check, new_id) is not None
    assert await history(hub, new_id) == CHECKED
    new = await detail(hub, s.pharmacist, new_id)
    assert new["medication"]["drug_description"] == "lisinopril 5 MG Oral Tablet"
    assert new["replaces"]["id"] == str(s.rx_id)
    assert new["replaces"]["kind"] == "change"
    # the predecessor is not "the same order sent again"
    assert "DUPLICATE_ORDER" not in {f["code"] for f in new["findings"]}
    old = await detail(hub, s.pharmacist, s.rx_id)
    assert old["state"] == "cancelled"
    assert f"replaced by prescription {new_id}" in old["history"][-1]["reason"]
    assert old["replaced_by"] == [{"id": str(new_id), "kind": "change", "state": "awaiting_review"}]
    (seen,) = old["answers"]
    assert (seen["response"], seen["text"], seen["new_prescription_id"]) == (
        "ApprovedWithChanges",
        "5 mg as you said",
        str(new_id),
    )
    (sent,) = [m for m in old["outbound"] if m["message_type"] == "RxChangeRequest"]
    assert sent["answer"] == {"response": "ApprovedWithChanges", "at": seen["at"]}
    # stored as received, one answer recorded against the request, audited
    (stored,) = await answers(hub)
    async with hub.db.sessions() as session:
        message = await session.get(InboundMessage, stored.inbound_message_id)
    assert message is not None
    assert message.sha256 == hashlib.sha256(message.raw).hexdigest()
    assert message.relates_to_message_id == request
    (entry,) = await audited(hub, "prescription.answer")
    assert (entry.resource_id, entry.outcome, entry.detail["state"]) == (
        str(s.rx_id),
        "success",
        "cancelled",
    )
    assert entry.detail["response"] == "ApprovedWithChanges"
