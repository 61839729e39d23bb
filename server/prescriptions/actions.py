"""Verification actions on one prescription: claim, release, approve, reject, clarify, notes.

The handlers only translate between HTTP and the decisions of :mod:`eprescribe.prescriptions`;
the store (:mod:`.store`) runs each in one unit of work that locks the prescription, writes
the outcome (state transition with actor, time and reason; notes; questions for the
prescriber) and the audit entry. A refused action changes nothing but is audited too, with the
reason it was refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from eprescribe import prescriptions as rules
from eprescribe import verification

from ..callers import PHARMACIST, Caller, caller
from ..http import path_uuid, read_json_object
from ..openapi import Operation, operation, path
from .queue import ACTION_NAMES
from .store import PRESCRIPTIONS, Decide

SCOPE = "rx:verify"
TECHNICIAN = "technician"
MAX_BODY = 16 * 1024

#: what each action decides, given the caller and the request body
Decision = Callable[[rules.Reviewer, dict[str, Any]], Decide]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _claim(who: rules.Reviewer, body: dict[str, Any]) -> Decide:
    return lambda rx, now: rules.claim(rx, who, now)


def _release(who: rules.Reviewer, body: dict[str, Any]) -> Decide:
    return lambda rx, now: rules.release(rx, who, now)


def _approve(who: rules.Reviewer, body: dict[str, Any]) -> Decide:
    return lambda rx, now: rules.approve(rx, who, body.get("overrides", {}), now)


def _reject(who: rules.Reviewer, body: dict[str, Any]) -> Decide:
    return lambda rx, now: rules.reject(rx, who, body.get("reason_code"), body.get("text"), now)


def _clarify(who: rules.Reviewer, body: dict[str, Any]) -> Decide:
    return lambda rx, now: rules.clarify(rx, who, body.get("reason_code"), body.get("text"), now)


def _note(who: rules.Reviewer, body: dict[str, Any]) -> Decide:
    return lambda rx, now: rules.add_note(rx, who.user_id, body.get("text"), now)


_REASON = {"type": "string", "minLength": 1, "maxLength": verification.REASON_MAX}
BODIES: dict[str, dict[str, Any] | None] = {
    "claim": None,
    "release": None,
    "approve": {
        "type": "object",
        "properties": {
            "overrides": {
                "type": "object",
                "description": "an override reason for each warning finding, by code",
                "additionalProperties": _REASON,
            }
        },
    },
    "reject": {
        "type": "object",
        "required": ["reason_code", "text"],
        "properties": {
            "reason_code": {"enum": sorted(verification.REJECT_REASONS)},
            "text": _REASON,
        },
    },
    "clarify": {
        "type": "object",
        "required": ["reason_code", "text"],
        "properties": {
            "reason_code": {"enum": sorted(verification.CLARIFY_REASONS)},
            "text": _REASON,
        },
    },
    "notes": {"type": "object", "required": ["text"], "properties": {"text": _REASON}},
}
SUMMARIES = {
    "claim": "Claim for review (a lock with an expiry; renewing is claiming again)",
    "release": "Give the claim up: back to the queue",
    "approve": "Approve (refused while hard stops stand; every warning needs a reason)",
    "reject": "Reject, with a reason code and text for the prescriber",
    "clarify": "Ask the prescriber for clarification (queued for sending)",
    "notes": "Add a note (pharmacists and technicians)",
}
_RESULT = {
    "type": "object",
    "required": ["id", "state", "claim"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "state": {"type": "string"},
        "claim": {"type": ["object", "null"]},
    },
}


def _action(name: str, decide: Decision, roles: tuple[str, ...], body: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        who = await caller(request, SCOPE)
        reviewer = _reviewer(who, roles)
        rx_id = path_uuid(request, "prescription")
        payload = await read_json_object(request, MAX_BODY) if body else {}
        rx = await request.app[PRESCRIPTIONS].act(
            who.actor, who.pharmacy_id, rx_id, name, decide(reviewer, payload)
        )
        return web.json_response({"id": str(rx.id), "state": rx.state, "claim": _claim_json(rx)})

    handler.__name__ = name
    handler.__doc__ = f"``POST /api/v1/prescriptions/{{id}}/{name}``"
    errors = ("400", "401", "403", "404", "409") + (("413", "415", "422") if body else ())
    described = operation(
        Operation(
            operation_id=f"{name}Prescription",
            summary=SUMMARIES[name],
            scope=SCOPE,
            parameters=[path("id", "the prescription")],
            body=BODIES[name],
            response=_RESULT,
            errors=errors,
            description=f"Allowed to: {', '.join(roles)}.",
        )
    )
    return described(handler)


def _reviewer(who: Caller, roles: tuple[str, ...]) -> rules.Reviewer:
    user_id = who.require_role(*roles)
    return rules.Reviewer(str(user_id), who.controlled_substances)


def _claim_json(rx: rules.Prescription) -> dict[str, Any] | None:
    if rx.claim is None:
        return None
    return {"user_id": rx.claim.holder, "until": rx.claim.until.isoformat()}


ONLY_PHARMACIST = (PHARMACIST,)
assert set(SUMMARIES) == set(ACTION_NAMES)
ACTIONS: dict[str, Handler] = {
    "claim": _action("claim", _claim, ONLY_PHARMACIST, body=False),
    "release": _action("release", _release, ONLY_PHARMACIST, body=False),
    "approve": _action("approve", _approve, ONLY_PHARMACIST, body=True),
    "reject": _action("reject", _reject, ONLY_PHARMACIST, body=True),
    "clarify": _action("clarify", _clarify, ONLY_PHARMACIST, body=True),
    "notes": _action("notes", _note, (PHARMACIST, TECHNICIAN), body=True),
}
