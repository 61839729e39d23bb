"""A prescriber's CancelRx, received (docs/ncpdp.md "CancelRx").

One unit of work stores the message as received, finds the prescription it cancels
(:func:`eprescribe.cancellations.match` over the pharmacy's prescriptions with the order's
number from the same sender), and decides (:func:`eprescribe.prescriptions.cancel`): the
prescription is ``cancelled`` and its claim ends, or nothing changes and the answer is
Denied with its reason. A fill in progress (filling, product check, ready: nothing handed
over) ends with the prescription (``server.dispensing.store.cancel_open_fill``). The decision
is audited with the message, and its CancelRxResponse
is written to the outbox in the same unit of work, so the answer the prescriber gets always
matches what the store did: never both, never neither. The sender's synchronous reply
(Status) is built only after the commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from eprescribe import prescriptions as rules
from eprescribe.cancellations import Candidate, Found, match
from eprescribe.ncpdp import (
    CancelRequest,
    CancelRx,
    MedicationPrescribed,
    Message,
    Party,
    from_json,
)
from eprescribe.ncpdp import Patient as PatientValue
from eprescribe.workflow import State

from .. import audit
from ..db import Database
from ..db.models import utcnow
from ..dispensing import store as fills
from ..notifications import Triggers
from ..outbox import Deliver
from ..outbox import store as outbox
from . import outbound, store
from .models import InboundMessage, Prescription

__all__ = ["CancelReceived", "receive_cancel"]

#: ``ProductCode/Qualifier`` of an NDC
_NDC = "ND"


@dataclasses.dataclass(frozen=True, slots=True)
class CancelReceived:
    """What the store did with a CancelRx: the prescription it named (None when none
    matched) and the answer owed to the prescriber (None for a test message, which changes
    nothing and is owed none)."""

    message_id: uuid.UUID
    prescription_id: uuid.UUID | None
    answer: rules.CancelAnswer | None


async def receive_cancel(
    db: Database,
    message: Message,
    body: CancelRx,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    recheck: Callable[[list[uuid.UUID]], None] | None = None,
    deliver: Deliver | None = None,
    notify: Triggers | None = None,
) -> CancelReceived:
    """Store and decide one CancelRx. :class:`~server.prescriptions.writer.Duplicate` when
    the sender's MessageID is stored already (nothing is written: the caller tells a
    resend from a reused MessageID)."""
    now = utcnow()
    async with db.transaction() as session:
        received, made_stale = await session.run_sync(
            lambda s: _receive(s, message, body, raw, actor, pharmacy_id, now, notify)
        )
        written = outbox.enqueued(session)
        told = notify.written(session) if notify is not None else []
    if made_stale and recheck is not None:
        recheck(made_stale)
    if written and deliver is not None:
        deliver(written)
    if notify is not None:
        notify.publish(told)
    return received


def _receive(
    session: Session,
    message: Message,
    body: CancelRx,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    now: dt.datetime,
    notify: Triggers | None = None,
) -> tuple[CancelReceived, list[uuid.UUID]]:
    header = message.header
    inbound_id = store.keep_received(session, message, raw, actor.id, pharmacy_id, now)
    detail: dict[str, Any] = {"message_id": header.message_id, "transaction": "CancelRx"}
    if header.test_message:
        # the sender's test of the path: kept and acknowledged, and never a live change
        entry = audit.Event(
            "script.cancel",
            "message",
            str(inbound_id),
            outcome="test",
            pharmacy_id=pharmacy_id,
            detail={**detail, "test": True},
        )
        store.save(session, [], [audit.values(actor, entry, now)])
        return CancelReceived(inbound_id, None, None), []
    request = CancelRequest.of(header, body)
    found = match(request, candidates(session, pharmacy_id, actor.id, request))
    if not isinstance(found, Found):
        denied = rules.CancelDenied(rules.CancelDenial.NOT_FOUND)
        entry = audit.Event(
            "script.cancel",
            "message",
            str(inbound_id),
            outcome="denied",
            pharmacy_id=pharmacy_id,
            detail={**detail, "denied": denied.reason.value, "why": found.reason.value},
        )
        outbound.cancel_answer(
            session,
            header,
            denied,
            prescription_id=None,
            pharmacy_id=pharmacy_id,
            client_id=actor.id,
            now=now,
        )
        store.save(session, [], [audit.values(actor, entry, now)])
        return CancelReceived(inbound_id, None, denied), []
    rx_id = found.candidate.prescription_id
    rx = store.load(session, [rx_id], pharmacy_id=pharmacy_id, lock_pictures=True)[rx_id]
    reason = f"cancelled by the prescriber (CancelRx {header.message_id})"
    answer = rules.cancel(rx, str(actor), reason, now)
    if isinstance(answer, rules.CancelApproved):
        changes = [store.Change(rx, answer.outcome)]
        # a fill in progress ends with it, nothing handed over (its product back to stock)
        ended = fills.cancel_open_fill(session, rx, answer.outcome.rx, actor, reason, now)
        if ended is not None:
            detail |= {"fill_cancelled": True, **ended}
        detail |= store.event_detail(answer.outcome)
        outcome = "success"
        if notify is not None:
            notify.cancelled_by_prescriber(
                session, pharmacy_id=pharmacy_id, patient_id=rx.patient_id, rx_id=rx_id, now=now
            )
    else:
        changes = []
        detail |= {"denied": answer.reason.value, "state": rx.state.value}
        outcome = "denied"
    entry = audit.Event(
        "prescription.cancel",
        "prescription",
        str(rx_id),
        outcome=outcome,
        pharmacy_id=pharmacy_id,
        detail=detail,
    )
    outbound.cancel_answer(
        session,
        header,
        answer,
        prescription_id=rx_id,
        pharmacy_id=pharmacy_id,
        client_id=actor.id,
        now=now,
    )
    made_stale = store.save(session, changes, [audit.values(actor, entry, now)], find_stale=True)
    return CancelReceived(inbound_id, rx_id, answer), made_stale


def candidates(
    session: Session, pharmacy_id: uuid.UUID, client_id: str, request: CancelRequest
) -> list[Candidate]:
    """The pharmacy's prescriptions a CancelRx (or an RxFillIndicatorChange, read the same
    way) may mean: those with its order number, or with the Rx number the hub gave
    (RxReferenceNumber, sent in RxFill), that came from the client posting it (another client
    naming the same ``From`` cancels nothing of this one's). Test messages never."""
    number, reference = request.prescriber_order_number, request.rx_reference_number
    named = [
        *([Prescription.prescriber_order_number == number] if number is not None else []),
        *([Prescription.rx_number == reference] if reference is not None else []),
    ]
    if not named:
        return []
    rows = session.execute(
        select(
            Prescription.id,
            Prescription.state,
            InboundMessage.sender,
            Prescription.prescriber_order_number,
            Prescription.patient,
            Prescription.medication,
            Prescription.drug_description,
            Prescription.replaces_prescription_id,
            Prescription.rx_number,
        )
        .join(InboundMessage, InboundMessage.id == Prescription.inbound_message_id)
        .where(
            Prescription.pharmacy_id == pharmacy_id,
            or_(*named),
            InboundMessage.sender_client_id == client_id,
            Prescription.test.is_(False),
        )
        .order_by(Prescription.received_at, Prescription.id)
    ).all()
    return [_candidate(*row) for row in rows]


def _candidate(
    rx_id: uuid.UUID,
    state: str,
    sender: str,
    number: str | None,
    patient: Any,
    medication: Any,
    description: str,
    replaces: uuid.UUID | None,
    rx_number: str | None = None,
) -> Candidate:
    person = from_json(PatientValue, patient)
    drug = from_json(MedicationPrescribed, medication)
    name, born = person.name, person.date_of_birth
    product = drug.product_code
    qualifier, _, value = sender.partition(":")
    return Candidate(
        prescription_id=rx_id,
        state=State(state),
        sender=Party(qualifier or None, value),
        prescriber_order_number=number,
        patient_last=name.last if name else None,
        patient_first=name.first if name else None,
        patient_born=born.date if born else None,
        drug_description=description,
        ndc=product.code if product is not None and product.qualifier == _NDC else None,
        rx_reference_number=rx_number,
        replaces=replaces,
    )
