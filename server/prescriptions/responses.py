"""A prescriber's answer to the hub's request: RxChangeResponse and RxRenewalResponse, received
(docs/ncpdp.md "RxChangeResponse and RxRenewalResponse").

One unit of work stores the message as received, finds the request it answers (its
``RelatesToMessageID`` is the MessageID of an RxChangeRequest or RxRenewalRequest the hub sent
for the receiving pharmacy to this client and prescriber) and does what the answer means,
through the prescription rules (:mod:`eprescribe.prescriptions`) and the store:

- a change Approved or ApprovedWithChanges: a new prescription from the answer's
  MedicationPrescribed, ``received`` (the worker checks it), linked to the original, which
  ends (``cancelled``, "replaced by ...") unless it was dispensed or had ended;
- a renewal Approved, ApprovedWithChanges or Replace: a new prescription (the renewal),
  ``received`` and linked; the original stays as it is;
- a change Validated: the prior authorization's number recorded on the prescription, which
  goes back from ``clarification_requested`` to the pharmacist's queue;
- a change Denied: back to the pharmacist's queue, the denial's reasons in the transition's
  reason and in the answer shown with the prescription; a renewal Denied: recorded, nothing
  moves.

The answer is recorded against the request (``prescriber_answers``, one a request) and
audited, the last statement. A response that matches no request is refused (Error 900/1000
with the XPath of ``RelatesToMessageID``) and leaves nothing behind; so is a second,
different answer to a request already answered (900/2000), and an answer about another
patient than the one asked about (900/2000, the XPath of its ``Patient``). The same answer
again under another MessageID is stored and acknowledged, and changes nothing. The sender's
Status is built after the commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe import prescriptions as rules
from eprescribe.epcs.signature import signed_content
from eprescribe.ncpdp import (
    DENIAL_REASONS,
    ContentInvalidError,
    Message,
    NewRx,
    OrderDetails,
    Patient,
    PrescriberResponse,
    ResponseKind,
    UnidentifiedError,
    from_json,
)
from eprescribe.ncpdp.prescriber_response import require_relates_to
from eprescribe.patients import same_person

from .. import audit
from ..db import Database
from ..db.models import utcnow
from ..notifications import Triggers
from ..outbox.models import OutboundMessage
from . import store
from .models import PrescriberAnswer
from .models import Prescription as PrescriptionRow

__all__ = ["REQUEST_OF", "AnswerReceived", "receive_response"]

#: the request each response answers
REQUEST_OF: Final = {
    "RxChangeResponse": "RxChangeRequest",
    "RxRenewalResponse": "RxRenewalRequest",
}
_RELATES_TO: Final = "/Message/Header/RelatesToMessageID"


@dataclasses.dataclass(frozen=True, slots=True)
class AnswerReceived:
    """What the store did with a response: the prescription asked about, the one the
    answer made (if any), and whether it was the same answer again."""

    message_id: uuid.UUID
    prescription_id: uuid.UUID | None
    new_prescription_id: uuid.UUID | None
    repeated: bool = False


async def receive_response(
    db: Database,
    message: Message,
    body: PrescriberResponse,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    check: Callable[[list[uuid.UUID]], None] | None = None,
    notify: Triggers | None = None,
) -> AnswerReceived:
    """Store and apply one response. :class:`~server.prescriptions.writer.Duplicate` when
    the sender's MessageID is stored already (the caller tells a resend from a reused
    MessageID); a ``ScriptRejection`` when it answers nothing, or answers again otherwise
    (nothing is written). ``check`` queues prescriptions for the checks after the commit."""
    relates_to = require_relates_to(message.header)
    now = utcnow()
    async with db.transaction() as session:
        received, to_check = await session.run_sync(
            lambda s: _receive(s, message, body, raw, actor, pharmacy_id, relates_to, now, notify)
        )
    if to_check and check is not None:
        check(to_check)
    return received


def _receive(
    session: Session,
    message: Message,
    body: PrescriberResponse,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    relates_to: str,
    now: dt.datetime,
    notify: Triggers | None = None,
) -> tuple[AnswerReceived, list[uuid.UUID]]:
    inbound_id = store.keep_received(session, message, raw, actor.id, pharmacy_id, now)
    request = _request(session, message, actor, pharmacy_id, relates_to)
    assert request.prescription_id is not None
    rx_id = request.prescription_id
    original = store.load(session, [rx_id], pharmacy_id=pharmacy_id, lock_pictures=True)[rx_id]
    _same_patient(session, rx_id, message, body)
    digest = hashlib.sha256(signed_content(raw)).hexdigest()
    detail: dict[str, Any] = {
        "message_id": message.header.message_id,
        "transaction": message.transaction,
        "response": body.answer.kind.value,
        "request_message_id": relates_to,
    }
    earlier = session.scalar(
        select(PrescriberAnswer).where(PrescriberAnswer.request_id == request.id)
    )
    if earlier is not None:
        if earlier.body_sha256 != digest:
            raise ContentInvalidError("the request was answered already", _RELATES_TO)
        entry = _event("script.response", inbound_id, pharmacy_id, "repeated", detail)
        store.save(session, [], [audit.values(actor, entry, now)])
        return AnswerReceived(inbound_id, rx_id, earlier.new_prescription_id, repeated=True), []
    if message.header.test_message:
        # a sender's test never changes a live prescription, nor uses up the request
        entry = _event("script.response", inbound_id, pharmacy_id, "test", detail)
        store.save(session, [], [audit.values(actor, entry, now)])
        return AnswerReceived(inbound_id, rx_id, None), []
    new_id, outcome = _apply(session, message, body, original, inbound_id, actor, now)
    if notify is not None:  # "needs the prescriber", not sent yet, is moot
        notify.prescriber_answered(session, rx_id=rx_id, now=now)
    session.add(_answer_row(message, body, request, inbound_id, new_id, digest, now))
    session.flush()
    entries = [_entry(actor, "prescription.answer", rx_id, pharmacy_id, outcome, detail, now)]
    if new_id is not None:
        detail_new = {**detail, "replaces": str(rx_id)}
        entries.append(
            _entry(actor, "prescription.receive", new_id, pharmacy_id, None, detail_new, now)
        )
    made_stale = store.save(session, [store.Change(original, outcome)], entries, find_stale=True)
    to_check = ([new_id] if new_id is not None else []) + made_stale
    return AnswerReceived(inbound_id, rx_id, new_id), to_check


def _answer_row(
    message: Message,
    body: PrescriberResponse,
    request: OutboundMessage,
    inbound_id: uuid.UUID,
    new_id: uuid.UUID | None,
    digest: str,
    now: dt.datetime,
) -> PrescriberAnswer:
    """The answer recorded against its request (one a request: ``request_id`` is unique)."""
    assert request.prescription_id is not None
    return PrescriberAnswer(
        id=uuid.uuid4(),
        prescription_id=request.prescription_id,
        request_id=request.id,
        inbound_message_id=inbound_id,
        transaction=message.transaction,
        response=body.answer.kind.value,
        reason_codes=" ".join(body.answer.reason_codes) or None,
        reference_number=_prior_authorization(body),
        text=body.answer.text,
        new_prescription_id=new_id,
        body_sha256=digest,
        received_at=now,
    )


def _request(
    session: Session,
    message: Message,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    relates_to: str,
) -> OutboundMessage:
    """The hub's request the response answers: its MessageID, of the kind this response
    answers, sent for the receiving pharmacy to this client and to the response's sender
    (the prescriber system, whichever qualifier it names itself with)."""
    found = session.scalar(
        select(OutboundMessage).where(
            OutboundMessage.message_id == relates_to,
            OutboundMessage.message_type == REQUEST_OF[message.transaction],
            OutboundMessage.client_id == actor.id,
            OutboundMessage.pharmacy_id == pharmacy_id,
            OutboundMessage.prescription_id.is_not(None),
        )
    )
    sender = message.header.from_.value
    if found is None or found.recipient.partition(":")[2] != sender:
        raise UnidentifiedError("no request of this pharmacy matches the response", _RELATES_TO)
    return found


def _same_patient(
    session: Session, rx_id: uuid.UUID, message: Message, body: PrescriberResponse
) -> None:
    """An answer about another patient than the one asked about is an error of its sender:
    refused (2000), never a prescription for someone else in place of this one."""
    row = session.get(PrescriptionRow, rx_id)
    assert row is not None
    if not same_person(from_json(Patient, row.patient), body.patient):
        raise ContentInvalidError(
            "the patient differs from the one the request was about",
            f"/Message/Body/{message.transaction}/Patient",
        )


def _apply(
    session: Session,
    message: Message,
    body: PrescriberResponse,
    original: rules.Prescription,
    inbound_id: uuid.UUID,
    actor: audit.Actor,
    now: dt.datetime,
) -> tuple[uuid.UUID | None, rules.Outcome]:
    """Decide through the rules; a new prescription is inserted here."""
    kind = body.answer.kind
    answer = f"{message.transaction} {kind.value}"
    renewal = message.transaction == "RxRenewalResponse"
    if not kind.makes_prescription:
        if renewal:  # a renewal denied: recorded with the original, nothing moves
            return None, rules.Outcome(original)
        return None, rules.prescriber_answered(
            original, str(actor), _why(answer, body), now, _prior_authorization(body)
        )
    new_id = uuid.uuid4()
    medication = body.medication
    assert medication is not None
    new = rules.receive_replacement(
        new_id,
        original.pharmacy_id,
        str(actor),
        answer,
        original.id,
        now,
        medication.dea_schedule,
        renewal=renewal,
    )
    row = session.get(PrescriptionRow, original.id)
    assert row is not None
    before = from_json(OrderDetails, row.details)
    order = NewRx(
        return_receipt=None,
        urgency_indicator_code=before.urgency_indicator_code,
        allergies=before.allergies,
        patient=body.patient,
        pharmacy=body.pharmacy or before.pharmacy,
        prescriber=body.prescriber,
        medication=medication,
        prohibit_renewal_request=body.prohibit_renewal_request,
        no_known_allergies=before.no_known_allergies,
        facility=before.facility,
        observation=before.observation,
        supervisor=before.supervisor,
    )
    store.add_replacement(
        session,
        new,
        message=message,
        inbound_id=inbound_id,
        order=order,
        details=OrderDetails.of(message.header, order),
        replaces=original.id,
        replacement="renewal" if renewal else "change",
        urgent=row.urgent,
        prescriber_order_number=message.header.prescriber_order_number
        or row.prescriber_order_number,
    )
    if renewal:
        return new_id, rules.Outcome(original)
    return new_id, rules.replaced(original, str(actor), new_id, answer, now)


def _why(answer: str, body: PrescriberResponse) -> str:
    """The transition's reason: the answer, its reasons in words, and its text."""
    parts = [f"prescriber answered: {answer}"]
    codes = body.answer.reason_codes
    if codes:
        words = "; ".join(f"{code} {DENIAL_REASONS.get(code, '')}".strip() for code in codes)
        parts.append(f"reasons: {words}")
    number = _prior_authorization(body)
    if number:
        parts.append(f"prior authorization {number}")
    if body.answer.text:
        parts.append(body.answer.text)
    return " - ".join(parts)


def _prior_authorization(body: PrescriberResponse) -> str | None:
    """A Validated answer's approval number: its ReferenceNumber, or the one in the
    MedicationPrescribed's PriorAuthorization."""
    if body.answer.kind is not ResponseKind.VALIDATED:
        return None
    if body.answer.reference_number:
        return body.answer.reference_number
    medication = body.medication
    if medication is not None and medication.prior_authorization is not None:
        return medication.prior_authorization.number
    return None


def _event(
    action: str, inbound_id: uuid.UUID, pharmacy_id: uuid.UUID, outcome: str, detail: dict[str, Any]
) -> audit.Event:
    return audit.Event(
        action, "message", str(inbound_id), outcome=outcome, pharmacy_id=pharmacy_id, detail=detail
    )


def _entry(
    actor: audit.Actor,
    action: str,
    rx_id: uuid.UUID,
    pharmacy_id: uuid.UUID,
    outcome: rules.Outcome | None,
    detail: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    extra = store.event_detail(outcome) if outcome is not None else {}
    event = audit.Event(
        action, "prescription", str(rx_id), pharmacy_id=pharmacy_id, detail=detail | extra
    )
    return audit.values(actor, event, now)
