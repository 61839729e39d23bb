"""A prescriber's answers to the hub's requests through the intake: an RxChangeResponse or an
RxRenewalResponse matched to its request by RelatesToMessageID, stored as received, applied
once through the prescription rules (a new prescription linked and checked, the original
ended or sent back to the pharmacist), audited, and acknowledged with Status."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import func, select

from eprescribe.ncpdp import parse_message
from eprescribe.ncpdp.outbound import MedicationLine, RxChangeRequest, rx_renewal_request
from server.admin.models import Pharmacy
from server.audit.models import AuditEvent
from server.outbox.models import OutboundMessage
from server.prescriptions import outbound
from server.prescriptions.models import InboundMessage, PrescriberAnswer, Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.check_helpers import history
from tests.functional.epcs_helpers import Pki, serve_pki
from tests.functional.intake_helpers import post_script
from tests.functional.test_verification import act, detail
from tests.functional.verification_helpers import staff
from tests.support.pki import sign_message
from tests.support.script_samples import cancelrx_xml, newrx_xml, response_xml

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
NOW = f"{TODAY}T00:00:00Z"
#: the prescriber system's Header/From in every sample (newrx_tree's default)
PRESCRIBER = "9990001"
SERTRALINE = "sertraline 50 MG Oral Tablet"
QUESTION = "Is 10 mg meant? The usual dose is 5 mg."
CHECKED = [(None, "received"), ("received", "checking"), ("checking", "awaiting_review")]
CLARIFIED = [
    *CHECKED,
    ("awaiting_review", "in_review"),
    ("in_review", "clarification_requested"),
]


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
    async with hub.db.sessions() as session:
        pharmacies = await session.scalar(select(func.count()).select_from(Pharmacy))
    if not pharmacies:
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


async def test_a_change_approved_as_asked_replaces_the_prescription(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    reply = await s.post(answer("RxChangeResponse", request, "<Approved/>", order_number=None))
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    assert await history(hub, s.rx_id) == [*CLARIFIED, ("clarification_requested", "cancelled")]
    assert await asyncio.to_thread(checker.check, new_id) is not None
    assert await history(hub, new_id) == CHECKED
    new = await detail(hub, s.pharmacist, new_id)
    assert new["replaces"] == {"id": str(s.rx_id), "kind": "change", "state": "cancelled"}
    # an answer without its own order number keeps the original's
    assert new["prescriber_order_number"] == f"ORD-{s.message_id}"
    assert new["history"][0]["reason"] == (
        f"RxChangeResponse Approved received; replaces prescription {s.rx_id}"
    )
    # the new prescription is a prescription like any: the pharmacist decides on it
    assert (await act(hub, s.pharmacist, new_id, "claim"))[0] == 200
    status, body = await act(hub, s.pharmacist, new_id, "approve", {"overrides": overrides(new)})
    assert status == 200, body
    assert (await history(hub, new_id))[-1] == ("in_review", "approved")
    # and the prescriber's later CancelRx of the order cancels it, not the one it replaced
    cancel = cancelrx_xml(
        message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{s.message_id}",
        drug_description="lisinopril 10 MG Oral Tablet",
        written_date=TODAY,
        sent_time=NOW,
    )
    assert code_of(await s.post(cancel)) == "000"
    assert (await history(hub, new_id))[-1] == ("approved", "cancelled")
    assert (await history(hub, s.rx_id))[-1] == ("clarification_requested", "cancelled")


def overrides(rx: dict[str, Any]) -> dict[str, str]:
    return {f["code"]: "reviewed" for f in rx["findings"] if f["severity"] == "warning"}


async def test_a_change_denied_goes_back_to_the_pharmacist_with_the_reason(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    reply = await s.post(
        answer(
            "RxChangeResponse",
            request,
            "<Denied><ReasonCode>AF</ReasonCode><DenialReason>Keep 10 mg, patient titrated"
            "</DenialReason></Denied>",
            with_medication=False,
        )
    )
    assert code_of(reply) == "000", reply
    assert await history(hub, s.rx_id) == [
        *CLARIFIED,
        ("clarification_requested", "awaiting_review"),
    ]
    seen = await detail(hub, s.pharmacist, s.rx_id)
    assert seen["state"] == "awaiting_review"
    reason = seen["history"][-1]["reason"]
    assert "RxChangeResponse Denied" in reason
    assert "Keep 10 mg, patient titrated" in reason
    assert "AF Patient should contact the prescriber first" in reason
    (denied,) = seen["answers"]
    assert denied["response"] == "Denied"
    assert denied["reasons"] == [
        {"code": "AF", "text": "Patient should contact the prescriber first"}
    ]
    assert (denied["text"], denied["new_prescription_id"]) == (
        "Keep 10 mg, patient titrated",
        None,
    )
    assert denied["request_message_id"] == request
    assert seen["replaced_by"] == []
    async with hub.db.sessions() as session:
        assert (
            await session.scalar(
                select(Prescription.id).where(Prescription.replaces_prescription_id == s.rx_id)
            )
            is None
        )
    # the pharmacist decides: claims it again and approves as written
    assert (await act(hub, s.pharmacist, s.rx_id, "claim"))[0] == 200
    status, _ = await act(hub, s.pharmacist, s.rx_id, "approve", {"overrides": overrides(seen)})
    assert status == 200


async def test_a_validated_prior_authorization_is_recorded_and_back_in_the_queue(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    reply = await s.post(
        answer(
            "RxChangeResponse",
            request,
            "<Validated><ReferenceNumber>PA-778899</ReferenceNumber>"
            "<Note>Approved by the plan</Note></Validated>",
            request_code="P",
        )
    )
    assert code_of(reply) == "000", reply
    assert await history(hub, s.rx_id) == [
        *CLARIFIED,
        ("clarification_requested", "awaiting_review"),
    ]
    seen = await detail(hub, s.pharmacist, s.rx_id)
    assert seen["prior_authorization"] == "PA-778899"
    assert "prior authorization PA-778899" in seen["history"][-1]["reason"]
    (validated,) = seen["answers"]
    assert (validated["response"], validated["reference_number"]) == ("Validated", "PA-778899")
    assert seen["replaced_by"] == []


# -- RxRenewalResponse -------------------------------------------------------------------------


async def test_a_renewal_approved_is_a_new_prescription_checked_with_the_whole_patient(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker, drug_description=SERTRALINE)
    request = await renewal_requested(s)
    reply = await s.post(
        answer(
            "RxRenewalResponse",
            request,
            "<Approved/>",
            order_number="ORD-RENEWAL-1",
            drug_description=SERTRALINE,
        )
    )
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    # the original stays where it was
    assert await history(hub, s.rx_id) == CHECKED
    assert await asyncio.to_thread(checker.check, new_id) is not None
    assert await history(hub, new_id) == CHECKED
    new = await detail(hub, s.pharmacist, new_id)
    assert new["replaces"] == {"id": str(s.rx_id), "kind": "renewal", "state": "awaiting_review"}
    assert new["prescriber_order_number"] == "ORD-RENEWAL-1"
    assert new["history"][0]["reason"].endswith(f"renews prescription {s.rx_id}")
    # the checks see the whole patient: the original, still open, is the same drug
    duplicates = [f for f in new["findings"] if f["code"] == "THERAPEUTIC_DUPLICATION"]
    assert [f["evidence"].get("pending_prescription_id") for f in duplicates] == [str(s.rx_id)]
    old = await detail(hub, s.pharmacist, s.rx_id)
    assert old["replaced_by"] == [
        {"id": str(new_id), "kind": "renewal", "state": "awaiting_review"}
    ]
    (sent,) = [m for m in old["outbound"] if m["message_type"] == "RxRenewalRequest"]
    assert sent["answer"]["response"] == "Approved"


async def test_a_renewal_replace_carries_the_new_sig(hub: Hub, checker: Checker) -> None:
    s = await scene(hub, checker)
    request = await renewal_requested(s)
    reply = await s.post(
        answer(
            "RxRenewalResponse",
            request,
            "<Replace><Note>Now once daily</Note></Replace>",
            sig_text="Take 1 tablet by mouth once daily",
            quantity="30",
        )
    )
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    assert await asyncio.to_thread(checker.check, new_id) is not None
    new = await detail(hub, s.pharmacist, new_id)
    assert new["medication"]["sig"]["text"] == "Take 1 tablet by mouth once daily"
    old = await detail(hub, s.pharmacist, s.rx_id)
    (replace,) = old["answers"]
    assert (replace["response"], replace["text"], replace["new_prescription_id"]) == (
        "Replace",
        "Now once daily",
        str(new_id),
    )


async def test_a_renewal_denied_is_recorded_on_the_original_with_its_reason(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await renewal_requested(s)
    reply = await s.post(
        answer(
            "RxRenewalResponse",
            request,
            "<Denied><ReasonCode>AC</ReasonCode><DenialReason>Moved to another clinic"
            "</DenialReason></Denied>",
            with_medication=False,
        )
    )
    assert code_of(reply) == "000", reply
    assert await history(hub, s.rx_id) == CHECKED
    seen = await detail(hub, s.pharmacist, s.rx_id)
    (denied,) = seen["answers"]
    assert (denied["transaction"], denied["response"], denied["text"]) == (
        "RxRenewalResponse",
        "Denied",
        "Moved to another clinic",
    )
    assert denied["reasons"][0]["text"] == "Patient no longer under the prescriber's care"
    (entry,) = await audited(hub, "prescription.answer")
    assert (entry.detail["response"], entry.detail["state"]) == ("Denied", "awaiting_review")


# -- matching and idempotency ------------------------------------------------------------------


async def test_a_response_that_answers_no_request_is_refused_and_leaves_nothing(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    other_sender = await hub.sender_token()
    for body, token in (
        (answer("RxChangeResponse", "NO-SUCH-REQUEST", "<Approved/>"), None),
        # the right request, from another prescriber system
        (answer("RxChangeResponse", request, "<Approved/>"), other_sender),
        # the right request, from another prescriber of the same system
        (answer("RxChangeResponse", request, "<Approved/>", from_="9990002"), None),
        # a renewal response to a change request
        (answer("RxRenewalResponse", request, "<Approved/>"), None),
    ):
        reply = await s.post(body, token)
        assert code_of(reply) == "900", reply
        assert description_of(reply) == (
            "1000",
            "no request of this pharmacy matches the response: /Message/Header/RelatesToMessageID",
        )
    reply = await s.post(
        answer("RxChangeResponse", request, "<Approved/>", omit=["Header/RelatesToMessageID"])
    )
    assert code_of(reply) == "900"
    assert description_of(reply)[0] == "3000"
    assert await answers(hub) == []
    async with hub.db.sessions() as session:
        kept = await session.scalars(
            select(InboundMessage.id).where(InboundMessage.transaction != "NewRx")
        )
        assert list(kept) == []
    assert (await history(hub, s.rx_id))[-1] == ("in_review", "clarification_requested")


async def test_an_answer_about_another_patient_is_refused(hub: Hub, checker: Checker) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    for other in ({"patient_last": "SOMEONEELSE"}, {"date_of_birth": "1990-02-02"}):
        reply = await s.post(answer("RxChangeResponse", request, "<Approved/>", **other))
        assert code_of(reply) == "900"
        assert description_of(reply) == (
            "2000",
            "the patient differs from the one the request was about: "
            "/Message/Body/RxChangeResponse/Patient",
        )
    assert await answers(hub) == []
    assert (await history(hub, s.rx_id))[-1] == ("in_review", "clarification_requested")
    # the same person written otherwise (case, accents) is the same patient
    reply = await s.post(
        answer("RxChangeResponse", request, "<Approved/>", patient_last="Testpatiént")
    )
    assert code_of(reply) == "000", reply


async def test_a_response_sent_again_is_acknowledged_and_applied_once(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await clarified(s)
    body = answer("RxChangeResponse", request, "<Approved/>", message_id="ANSWER-ONCE")
    for _ in range(2):  # its Status was lost: the same message again
        assert code_of(await s.post(body)) == "000"
    # the same answer under another MessageID (an EHR that resends as a new message)
    again = answer("RxChangeResponse", request, "<Approved/>", message_id="ANSWER-TWICE")
    assert code_of(await s.post(again)) == "000"
    assert len(await answers(hub)) == 1
    new_id = await replacement_of(hub, s.rx_id)
    assert await history(hub, s.rx_id) == [*CLARIFIED, ("clarification_requested", "cancelled")]
    assert await hub.audit_outcomes("script.response") == ["repeated"]
    # a different answer to a request answered already is refused; the same MessageID with
    # other bytes is a duplicate
    changed = answer("RxChangeResponse", request, "<Denied><ReasonCode>AA</ReasonCode></Denied>")
    reply = await s.post(changed)
    assert code_of(reply) == "900"
    assert description_of(reply) == (
        "2000",
        "the request was answered already: /Message/Header/RelatesToMessageID",
    )
    reused = answer(
        "RxChangeResponse",
        request,
        "<Denied><ReasonCode>AA</ReasonCode></Denied>",
        message_id="ANSWER-ONCE",
    )
    reply = await s.post(reused)
    assert (code_of(reply), description_of(reply)[0]) == ("900", "220")
    assert [a.new_prescription_id for a in await answers(hub)] == [new_id]


async def test_a_controlled_substance_s_answer_is_held_to_the_epcs_rules(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker, controlled=True, drug_description=None)
    request = await clarified(s)
    # approved with a signature indicator: carried to the new prescription, archived
    reply = await s.post(
        answer("RxChangeResponse", request, "<Approved/>", controlled=True, drug_description=None)
    )
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    assert await asyncio.to_thread(checker.check, new_id) is not None
    new = await detail(hub, s.pharmacist, new_id)
    assert new["details"]["digital_signature"]["indicator"] is True
    assert new["epcs"] is not None
    assert new["epcs"]["practitioner_signature"] == "indicator"
    assert "EPCS_SIGNATURE_MISSING" not in {f["code"] for f in new["findings"]}


async def test_a_controlled_substance_s_answer_without_a_signature_is_a_finding(
    hub: Hub, checker: Checker
) -> None:
    s = await scene(hub, checker)
    request = await renewal_requested(s)
    reply = await s.post(
        answer(
            "RxRenewalResponse",
            request,
            "<Approved/>",
            controlled=True,
            drug_description=None,
            omit=["Header/DigitalSignature"],
        )
    )
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    assert await asyncio.to_thread(checker.check, new_id) is not None
    new = await detail(hub, s.pharmacist, new_id)
    assert new["details"]["digital_signature"] is None
    assert "EPCS_SIGNATURE_MISSING" in {f["code"] for f in new["findings"]}
    assert new["epcs"] is not None


@pytest.fixture
async def pki(aiohttp_server: object, tmp_path: Path) -> Pki:
    return await serve_pki(aiohttp_server, tmp_path)


@pytest.fixture
def epcs_checker(settings: Settings, pki: Pki) -> Iterator[Checker]:
    checker = Checker.from_settings(dataclasses.replace(settings, epcs_trust_roots=str(pki.roots)))
    yield checker
    checker.close()


def signed(pki: Pki, document: bytes) -> bytes:
    key, cert = pki.intermediate.issue("Dr Synthetic Prescriber")
    return sign_message(document, key, cert, chain=(pki.intermediate.cert,))


async def test_a_signed_answer_is_verified_on_receipt_and_a_tampered_one_is_a_hard_stop(
    hub: Hub, epcs_checker: Checker, pki: Pki
) -> None:
    s = await scene(hub, epcs_checker, controlled=True, drug_description=None)
    request = await clarified(s)
    document = signed(
        pki,
        answer("RxChangeResponse", request, "<Approved/>", controlled=True, drug_description=None),
    )
    assert code_of(await s.post(document)) == "000"
    new_id = await replacement_of(hub, s.rx_id)
    assert await asyncio.to_thread(epcs_checker.check, new_id) is not None
    new = await detail(hub, s.pharmacist, new_id)
    assert (new["epcs"]["verified_on_receipt"], new["epcs"]["verification"]) == (True, "verified")
    codes = {f["code"] for f in new["findings"]}
    assert not codes & {"EPCS_SIGNATURE_INVALID", "EPCS_SIGNATURE_MISSING"}, codes
    # a renewal answer altered after it was signed: accepted, and a hard stop for the pharmacist
    other = await scene(hub, epcs_checker, controlled=True, drug_description=None)
    renewal = await renewal_requested(other)
    document = signed(
        pki,
        answer("RxRenewalResponse", renewal, "<Approved/>", controlled=True, drug_description=None),
    )
    tampered = document.replace(b"<Value>60</Value>", b"<Value>90</Value>")
    assert tampered != document
    assert code_of(await other.post(tampered)) == "000"
    renewed = await replacement_of(hub, other.rx_id)
    assert await asyncio.to_thread(epcs_checker.check, renewed) is not None
    seen = await detail(hub, other.pharmacist, renewed)
    assert seen["epcs"]["verified_on_receipt"] is False
    invalid = [f for f in seen["findings"] if f["code"] == "EPCS_SIGNATURE_INVALID"]
    assert [f["severity"] for f in invalid] == ["hard_stop"]


async def test_a_renewal_asked_from_the_console_is_asked_once_until_answered(
    hub: Hub, checker: Checker
) -> None:
    """The whole exchange through the hub's own doors: the pharmacist asks for a renewal of
    an approved prescription with no refills; asking again waits for the prescriber's
    answer; the answer (Approved) is a new prescription, and a renewal may be asked again."""
    s = await scene(hub, checker, refills="0")
    assert (await act(hub, s.pharmacist, s.rx_id, "claim"))[0] == 200
    findings = (await detail(hub, s.pharmacist, s.rx_id))["findings"]
    overrides = {f["code"]: "checked" for f in findings if f["severity"] == "warning"}
    status, body = await act(hub, s.pharmacist, s.rx_id, "approve", {"overrides": overrides})
    assert (status, body["state"]) == (200, "approved"), body
    status, body = await act(hub, s.pharmacist, s.rx_id, "request_renewal", {"refills": 2})
    assert status == 200, body
    (request,) = await requests(hub, s.rx_id, "RxRenewalRequest")
    # asked already: a second request waits for the answer, and the console says why
    status, body = await act(hub, s.pharmacist, s.rx_id, "request_renewal", {"refills": 2})
    assert (status, body["code"]) == (409, "renewal_pending"), body
    renewal = (await detail(hub, s.pharmacist, s.rx_id))["renewal"]
    assert (renewal["allowed"], renewal["code"]) == (False, "renewal_pending")
    reply = await s.post(answer("RxRenewalResponse", request.message_id, "<Approved/>"))
    assert code_of(reply) == "000", reply
    new_id = await replacement_of(hub, s.rx_id)
    assert await asyncio.to_thread(checker.check, new_id) is not None
    assert await history(hub, new_id) == CHECKED
    assert (await detail(hub, s.pharmacist, s.rx_id))["renewal"]["allowed"] is True
