"""What the prescriptions feature sends to prescribers, written to the outbox
(:mod:`server.outbox`) in the unit of work of the change that causes it.

Each message is built by its builder in :mod:`eprescribe.ncpdp.outbound` from the prescription
as stored (:func:`original`) and goes to the client that sent the NewRx: what a pharmacist asks
(:func:`change_request`, an RxChangeRequest of the kind asked), a renewal request
(:func:`renewal_request`, an RxRenewalRequest), and the answer to a CancelRx
(:func:`cancel_answer`). A later transition adds one function here calling :func:`send`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe import prescriptions as rules
from eprescribe.ncpdp import (
    DrugDbCode,
    Header,
    MedicationPrescribed,
    OrderDetails,
    Party,
    Patient,
    Prescriber,
    Quantity,
    SenderSoftware,
    from_json,
)
from eprescribe.ncpdp import Pharmacy as PharmacyBlock
from eprescribe.ncpdp.outbound import (
    CancelRxResponse,
    ChangeRequestCode,
    MedicationLine,
    OriginalPrescription,
    OutboundError,
    RenewalProhibitedError,
    cancel_rx_response,
    rx_change_request,
    rx_renewal_request,
)
from eprescribe.verification import ChangeQuestion, ProposedMedication

from ..admin.models import Pharmacy
from ..outbox import store as outbox
from ..outbox.store import Outbound
from ..settings import SOFTWARE_VERSION
from .models import InboundMessage
from .models import Prescription as PrescriptionRow

#: the hub as the sender of what it sends (the intake's replies name the same)
SOFTWARE = SenderSoftware("Telepharm", "Telepharm Hub", SOFTWARE_VERSION)
CHANGE_REQUEST = "RxChangeRequest"
RENEWAL_REQUEST = "RxRenewalRequest"
#: Quantity/CodeListQualifier of a proposed quantity: 38, original quantity
ORIGINAL_QUANTITY = "38"


@dataclass(frozen=True, slots=True)
class Sent:
    """A message written to the outbox: its row and its ``MessageID`` (what an answer's
    ``RelatesToMessageID`` names)."""

    id: uuid.UUID
    message_id: str


@dataclass(frozen=True, slots=True)
class Addressed:
    """A stored prescription as the starting point of a message about it, and who gets it."""

    original: OriginalPrescription
    client_id: str
    pharmacy_id: uuid.UUID


def original(session: Session, rx_id: uuid.UUID) -> Addressed:
    """The prescription ``rx_id`` as stored (its row is locked by the caller), with the
    envelope of the NewRx that brought it: to its sender, from its pharmacy."""
    row = session.get(PrescriptionRow, rx_id)
    assert row is not None
    client_id, ncpdpid, npi, name = session.execute(
        select(InboundMessage.sender_client_id, Pharmacy.ncpdpid, Pharmacy.npi, Pharmacy.name)
        .join(Pharmacy, Pharmacy.id == InboundMessage.pharmacy_id)
        .where(InboundMessage.id == row.inbound_message_id)
    ).one()
    details = from_json(OrderDetails, row.details)
    # without the NewRx's own Pharmacy block, the hub's record (which has no phone number:
    # the builder refuses it, and the message is kept dead with the reason)
    pharmacy = details.pharmacy or PharmacyBlock(ncpdpid, npi, name, ())
    return Addressed(
        OriginalPrescription(
            prescriber_party=details.sender,
            pharmacy_party=Party("P", ncpdpid),
            message_id=row.message_id,
            prescriber_order_number=row.prescriber_order_number,
            patient=from_json(Patient, row.patient),
            pharmacy=pharmacy,
            prescriber=from_json(Prescriber, row.prescriber),
            medication=from_json(MedicationPrescribed, row.medication),
            prohibit_renewal_request=details.prohibit_renewal_request,
        ),
        client_id,
        row.pharmacy_id,
    )


Build = Callable[[OriginalPrescription, str, dt.datetime], bytes]


def send(
    session: Session, rx_id: uuid.UUID, message_type: str, build: Build, now: dt.datetime
) -> Sent:
    """Write the message ``build`` makes about ``rx_id`` (given the original, a new MessageID
    and the time) to the outbox. A message the builder refuses (a value SCRIPT cannot carry) is
    kept ``dead``, with the refusal's XPath, for operators to see: the change still stands."""
    addressed = original(session, rx_id)
    message_id = outbox.new_message_id()
    try:
        payload, error = build(addressed.original, message_id, now), None
    except (OutboundError, RenewalProhibitedError) as exc:
        payload, error = b"", f"not built: {exc}"
    written = outbox.enqueue(
        session,
        Outbound(
            pharmacy_id=addressed.pharmacy_id,
            prescription_id=rx_id,
            client_id=addressed.client_id,
            recipient=addressed.original.prescriber_party,
            message_type=message_type,
            message_id=message_id,
            relates_to_message_id=addressed.original.message_id,
            payload=payload,
        ),
        now,
    )
    if error is not None:
        outbox.dead_on_arrival(session, written, error)
    return Sent(written, message_id)


def change_request(session: Session, rx_id: uuid.UUID, asked: rules.ClarificationAsked) -> Sent:
    """What a pharmacist asks: an RxChangeRequest with the kind's ``MessageRequestCode`` (and a
    prescriber authorization's sub-codes). The proposed medications are its
    MedicationRequested; without any, one MedicationRequested repeats the prescription as
    written. The pharmacist's text goes in each one's Note (a clarification's as
    ``Clarification (strength): ...``)."""
    question = asked.request

    def build(original: OriginalPrescription, message_id: str, now: dt.datetime) -> bytes:
        lines = tuple(_line(m, original.medication) for m in question.medications) or (
            MedicationLine.of(original.medication),
        )
        note = _note(question)
        return rx_change_request(
            original,
            question.kind,
            message_id=message_id,
            sent_time=now,
            software=SOFTWARE,
            requested=tuple(replace(line, note=note) for line in lines),
            sub_codes=question.sub_codes,
        )

    return send(session, rx_id, CHANGE_REQUEST, build, asked.at)


def _note(question: ChangeQuestion) -> str:
    if question.kind is ChangeRequestCode.SCRIPT_CLARIFICATION:
        return f"Clarification ({question.reason_code}): {question.text}"
    return f"{question.label.capitalize()}: {question.text}"


def _line(proposed: ProposedMedication, prescribed: MedicationPrescribed) -> MedicationLine:
    """A proposed medication as a MedicationRequested: the drug the reference named (with its
    RxNorm code and DEA schedule when the reference has them), the quantity in its unit, the
    directions; substitutions as the prescription allowed them."""
    return MedicationLine(
        drug_description=proposed.drug_description,
        quantity=Quantity(proposed.quantity, ORIGINAL_QUANTITY, proposed.quantity_unit),
        substitutions=prescribed.substitutions,
        sig_text=proposed.sig,
        drug_db_code=DrugDbCode(proposed.rxcui, "SCD") if proposed.rxcui else None,
        dea_schedule=proposed.dea_schedule,
        days_supply=proposed.days_supply,
        number_of_refills=proposed.refills,
    )


def change_detail(question: ChangeQuestion) -> dict[str, Any]:
    """What a change request asked beyond its code, reason and text, as stored with it."""
    return {
        "sub_codes": list(question.sub_codes),
        "medications": [
            {
                "drug_description": m.drug_description,
                "quantity": str(m.quantity),
                "quantity_unit": m.quantity_unit,
                "sig": m.sig,
                "days_supply": m.days_supply,
                "refills": m.refills,
                "rxcui": m.rxcui,
                "dea_schedule": m.dea_schedule,
            }
            for m in question.medications
        ],
    }


def renewal_request(session: Session, rx_id: uuid.UUID, asked: rules.RenewalRequested) -> Sent:
    """A renewal request: an RxRenewalRequest whose MedicationDispensed is the prescription as
    written (the hub records no fills yet, so no LastFillDate), with the refills the pharmacy
    asks for and the pharmacist's note. The rules refused it already when the NewRx prohibited
    renewal requests; the builder refuses again (not built, kept dead) should one slip by."""

    def build(original: OriginalPrescription, message_id: str, now: dt.datetime) -> bytes:
        dispensed = MedicationLine.of(original.medication, pharmacy_requested_refills=asked.refills)
        if asked.note:
            dispensed = replace(dispensed, note=asked.note)
        return rx_renewal_request(
            original, dispensed, message_id=message_id, sent_time=now, software=SOFTWARE
        )

    return send(session, rx_id, RENEWAL_REQUEST, build, asked.at)


#: the CancelRxResponse ``Denied/ReasonCode`` of each reason the hub denies a cancel for
#: (eprescribe.ncpdp.outbound.cancelrxresponse: public values, unverified); the
#: ``DenialReason`` text says which it was in words
CANCEL_DENIAL_CODES = {
    rules.CancelDenial.ALREADY_DISPENSED: "AH",
    rules.CancelDenial.ALREADY_ENDED: "AP",
    rules.CancelDenial.NOT_FOUND: "AP",
}


def cancel_answer(
    session: Session,
    cancel: Header,
    answer: rules.CancelAnswer,
    *,
    prescription_id: uuid.UUID | None,
    pharmacy_id: uuid.UUID,
    client_id: str,
    now: dt.datetime,
) -> uuid.UUID:
    """The CancelRxResponse owed for the CancelRx whose header is ``cancel``: Approved, or
    Denied with the reason, to the client that sent the CancelRx; after the prescription's
    earlier messages when it names one."""
    if isinstance(answer, rules.CancelApproved):
        response = CancelRxResponse.approve()
    else:
        response = CancelRxResponse.deny(
            CANCEL_DENIAL_CODES[answer.reason], reason=answer.reason.text
        )
    message_id = outbox.new_message_id()
    payload = cancel_rx_response(
        cancel, response, message_id=message_id, sent_time=now, software=SOFTWARE
    )
    return outbox.enqueue(
        session,
        Outbound(
            pharmacy_id=pharmacy_id,
            prescription_id=prescription_id,
            client_id=client_id,
            recipient=cancel.from_,
            message_type="CancelRxResponse",
            message_id=message_id,
            relates_to_message_id=cancel.message_id,
            payload=payload,
        ),
        now,
    )
