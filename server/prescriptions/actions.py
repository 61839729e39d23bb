"""Verification actions on one prescription: claim, release, approve, reject, clarify (ask the
prescriber: a clarification or another change request), request a renewal, notes.

The handlers only translate between HTTP and the decisions of :mod:`eprescribe.prescriptions`;
the store (:mod:`.store`) runs each in one unit of work that locks the prescription, writes
the outcome (state transition with actor, time and reason; notes; questions for the
prescriber) and the audit entry. A refused action changes nothing but is audited too, with the
reason it was refused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web

from eprescribe import prescriptions as rules
from eprescribe import verification
from eprescribe.drugs import DrugReference
from eprescribe.workflow import State

from ..callers import PHARMACIST, Caller, caller
from ..http import path_uuid, read_json_as, respond
from ..openapi import Operation, Timestamp, operation, path
from .queue import ACTION_NAMES, action_operation
from .store import PRESCRIPTIONS, Decide

SCOPE = "rx:verify"
TECHNICIAN = "technician"
MAX_BODY = 16 * 1024

Handler = Callable[[web.Request], Awaitable[web.Response]]

#: a reason text: checked by the rules (422 when blank or too long), described here
Reason = Annotated[
    str,
    msgspec.Meta(extra_json_schema={"minLength": 1, "maxLength": verification.REASON_MAX}),
]


#: reason codes: checked by the rules (422 for another), listed here
RejectCode = Annotated[
    str, msgspec.Meta(extra_json_schema={"enum": sorted(verification.REJECT_REASONS)})
]
ClarifyCode = Annotated[
    str, msgspec.Meta(extra_json_schema={"enum": sorted(verification.CLARIFY_REASONS)})
]


class ActionBody(msgspec.Struct, frozen=True, kw_only=True):
    """An action's body: members it does not name are ignored, as they always were here (the
    console may send one body shape to several actions)."""


class Approval(ActionBody, frozen=True):
    overrides: Annotated[
        dict[str, Reason],
        msgspec.Meta(description="an override reason for each warning finding, by code"),
    ] = msgspec.field(default_factory=dict)
    findings_basis: Annotated[
        int | None,
        msgspec.Meta(
            description="the findings' basis the pharmacist reviewed (the prescription's "
            "findings_basis): refused with 409 checked_again when the findings changed since"
        ),
    ] = None


class Rejection(ActionBody, frozen=True):
    reason_code: RejectCode
    text: Reason


RequestCode = Annotated[
    str,
    msgspec.Meta(
        description="what is asked (the RxChangeRequest's MessageRequestCode): "
        + ", ".join(f"{code} {label}" for code, label in verification.CHANGE_KINDS.items()),
        extra_json_schema={"enum": sorted(verification.CHANGE_KINDS)},
    ),
]
SubCode = Annotated[
    str,
    msgspec.Meta(
        description="what a prescriber authorization asks to confirm: "
        + ", ".join(f"{c} {s}" for c, s in verification.AUTHORIZATION_SUBJECTS.items()),
        extra_json_schema={"enum": sorted(verification.AUTHORIZATION_SUBJECTS)},
    ),
]
QuantityUnit = Annotated[
    str,
    msgspec.Meta(
        description="NCI unit code: "
        + ", ".join(f"{c} {u}" for c, u in verification.QUANTITY_UNITS.items()),
        extra_json_schema={"enum": sorted(verification.QUANTITY_UNITS)},
    ),
]


class ProposedMedication(msgspec.Struct, frozen=True, kw_only=True):
    """A medication proposed to the prescriber (a MedicationRequested): checked by the rules
    (422 ``drug_unknown``, ``quantity_invalid``, ``quantity_unit_invalid``, ``sig_required``,
    ``days_supply_invalid``, ``refills_invalid``)."""

    drug: Annotated[
        str,
        msgspec.Meta(
            description="a drug of the drug reference, by its name (GET /api/v1/drugs) or a "
            "description naming exactly one",
            extra_json_schema={"maxLength": 200},
        ),
    ]
    quantity: Annotated[float, msgspec.Meta(extra_json_schema={"exclusiveMinimum": 0})]
    quantity_unit: QuantityUnit
    sig: Annotated[
        str, msgspec.Meta(description="directions", extra_json_schema={"maxLength": 1000})
    ]
    days_supply: Annotated[
        int | None, msgspec.Meta(extra_json_schema={"minimum": 1, "maximum": 999})
    ] = None
    refills: Annotated[
        int | None, msgspec.Meta(extra_json_schema={"minimum": 0, "maximum": 99})
    ] = None


class Clarification(ActionBody, frozen=True, kw_only=True):
    """What the pharmacist asks the prescriber; the rules decide what each kind needs (see
    docs/verification.md)."""

    request_code: RequestCode = "S"
    reason_code: Annotated[
        ClarifyCode | None,
        msgspec.Meta(description="required for script clarification (S), optional otherwise"),
    ] = None
    text: Reason
    sub_codes: Annotated[
        list[SubCode],
        msgspec.Meta(description="prescriber authorization (U) only, and required there"),
    ] = msgspec.field(default_factory=list)
    medications: Annotated[
        list[ProposedMedication],
        msgspec.Meta(
            description="1 to 3 for generic substitution (G) and therapeutic interchange (T); "
            "0 to 3 for out of stock (OS) and drug use evaluation (D); none for the others"
        ),
    ] = msgspec.field(default_factory=list)


class Renewal(ActionBody, frozen=True):
    """A renewal request (an RxRenewalRequest) for an approved prescription whose refills are
    used up."""

    refills_used: Annotated[
        bool,
        msgspec.Meta(
            description="the pharmacist states that the refills the prescription was written "
            "with are used up (needed when it has any: the hub counts no fills yet)"
        ),
    ] = False
    refills: Annotated[
        int | None,
        msgspec.Meta(
            description="refills the pharmacy asks for (PharmacyRequestedRefills); "
            "null: as the prescriber sees fit",
            extra_json_schema={"minimum": 0, "maximum": 99},
        ),
    ] = None
    note: Annotated[Reason | None, msgspec.Meta(description="for the prescriber")] = None


class Note(ActionBody, frozen=True):
    text: Reason


class HeldClaim(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    until: Timestamp


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """The prescription after the action."""

    id: uuid.UUID
    state: State
    claim: HeldClaim | None


def _claim(who: rules.Reviewer, body: None) -> Decide:
    return lambda rx, now: rules.claim(rx, who, now)


def _release(who: rules.Reviewer, body: None) -> Decide:
    return lambda rx, now: rules.release(rx, who, now)


def _approve(who: rules.Reviewer, body: Approval) -> Decide:
    return lambda rx, now: rules.approve(rx, who, body.overrides, now, body.findings_basis)


def _reject(who: rules.Reviewer, body: Rejection) -> Decide:
    return lambda rx, now: rules.reject(rx, who, body.reason_code, body.text, now)


def _clarify(who: rules.Reviewer, body: Clarification) -> Decide:
    def decide(rx: rules.Prescription, now: dt.datetime) -> rules.Outcome:
        question = verification.change_question(
            body.request_code,
            body.reason_code,
            body.text,
            body.sub_codes,
            [
                verification.MedicationDraft(
                    m.drug, m.quantity, m.quantity_unit, m.sig, m.days_supply, m.refills
                )
                for m in body.medications
            ],
            DrugReference.bundled(),
        )
        return rules.ask_prescriber(rx, who, question, now)

    return decide


def _request_renewal(who: rules.Reviewer, body: Renewal) -> Decide:
    return lambda rx, now: rules.request_renewal(
        rx, who, now, refills_used=body.refills_used, refills=body.refills, note=body.note
    )


def _note(who: rules.Reviewer, body: Note) -> Decide:
    return lambda rx, now: rules.add_note(rx, who.user_id, body.text, now)


SUMMARIES = {
    "claim": "Claim for review (a lock with an expiry; renewing is claiming again)",
    "release": "Give the claim up: back to the queue",
    "approve": "Approve (refused while hard stops stand; every warning needs a reason)",
    "reject": "Reject, with a reason code and text for the prescriber",
    "clarify": "Ask the prescriber: a clarification or another change request (an "
    "RxChangeRequest of the kind asked, through the outbox)",
    "request_renewal": "Ask the prescriber to renew an approved prescription whose refills "
    "are used up (an RxRenewalRequest, through the outbox)",
    "notes": "Add a note (pharmacists and technicians)",
}


def _action(
    name: str,
    decide: Callable[[rules.Reviewer, Any], Decide],
    roles: tuple[str, ...],
    body: type[ActionBody] | None,
) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        who = await caller(request, SCOPE)
        reviewer = _reviewer(who, roles)
        rx_id = path_uuid(request, "prescription")
        payload = await read_json_as(request, body, MAX_BODY) if body else None
        rx = await request.app[PRESCRIPTIONS].act(
            who.actor,
            who.pharmacy_id,
            rx_id,
            name,
            decide(reviewer, payload),
        )
        return respond(Result(id=rx.id, state=rx.state, claim=_held(rx)))

    handler.__name__ = name
    handler.__doc__ = f"``POST /api/v1/prescriptions/{{id}}/{name}``"
    errors = ("400", "401", "403", "404", "409") + (("413", "415", "422") if body else ())
    described = operation(
        Operation(
            operation_id=action_operation(name),
            summary=SUMMARIES[name],
            scope=SCOPE,
            parameters=[path("id", "the prescription")],
            body=body,
            response=Result,
            errors=errors,
            description=f"Allowed to: {', '.join(roles)}.",
        )
    )
    return described(handler)


def _reviewer(who: Caller, roles: tuple[str, ...]) -> rules.Reviewer:
    user_id = who.require_role(*roles)
    return rules.Reviewer(str(user_id), who.controlled_substances)


def _held(rx: rules.Prescription) -> HeldClaim | None:
    if rx.claim is None:
        return None
    return HeldClaim(user_id=rx.claim.holder, until=rx.claim.until.isoformat())


ONLY_PHARMACIST = (PHARMACIST,)
assert set(SUMMARIES) == set(ACTION_NAMES)
ACTIONS: dict[str, Handler] = {
    "claim": _action("claim", _claim, ONLY_PHARMACIST, None),
    "release": _action("release", _release, ONLY_PHARMACIST, None),
    "approve": _action("approve", _approve, ONLY_PHARMACIST, Approval),
    "reject": _action("reject", _reject, ONLY_PHARMACIST, Rejection),
    "clarify": _action("clarify", _clarify, ONLY_PHARMACIST, Clarification),
    "request_renewal": _action("request_renewal", _request_renewal, ONLY_PHARMACIST, Renewal),
    "notes": _action("notes", _note, (PHARMACIST, TECHNICIAN), Note),
}
