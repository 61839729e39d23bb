"""Verification actions on one prescription: claim, release, approve, reject, clarify, notes.

The handlers only translate between HTTP and the decisions of :mod:`eprescribe.prescriptions`;
the store (:mod:`.store`) runs each in one unit of work that locks the prescription, writes
the outcome (state transition with actor, time and reason; notes; questions for the
prescriber) and the audit entry. A refused action changes nothing but is audited too, with the
reason it was refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web

from eprescribe import prescriptions as rules
from eprescribe import verification
from eprescribe.workflow import State

from ..callers import PHARMACIST, Caller, caller
from ..http import path_uuid, read_json_as, respond
from ..openapi import Operation, Timestamp, operation, path
from .queue import ACTION_NAMES
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


class Clarification(ActionBody, frozen=True):
    reason_code: ClarifyCode
    text: Reason


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
    return lambda rx, now: rules.clarify(rx, who, body.reason_code, body.text, now)


def _note(who: rules.Reviewer, body: Note) -> Decide:
    return lambda rx, now: rules.add_note(rx, who.user_id, body.text, now)


SUMMARIES = {
    "claim": "Claim for review (a lock with an expiry; renewing is claiming again)",
    "release": "Give the claim up: back to the queue",
    "approve": "Approve (refused while hard stops stand; every warning needs a reason)",
    "reject": "Reject, with a reason code and text for the prescriber",
    "clarify": "Ask the prescriber for clarification (an RxChangeRequest, through the outbox)",
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
            operation_id=f"{name}Prescription",
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
    "notes": _action("notes", _note, (PHARMACIST, TECHNICIAN), Note),
}
