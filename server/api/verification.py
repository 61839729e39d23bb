"""Verification actions on one prescription: claim, release, approve, reject, clarify, notes.

Each action runs in one transaction that locks the prescription row, applies the rules of
:mod:`eprescribe.verification`, records the state transition (actor, time, reason) and the
audit entry. A refused action changes nothing but is audited too, with the reason it was
refused. The handlers only translate between HTTP and those rules.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select

from eprescribe import verification, workflow
from eprescribe.verification import Claim, VerificationError
from eprescribe.workflow import State

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..db.models import (
    ClarificationRequest,
    Finding,
    Prescription,
    PrescriptionNote,
    PrescriptionTransition,
    utcnow,
)
from ..errors import Conflict, Forbidden, NotFound, Problem, Unprocessable
from ..http import path_uuid, read_json_object
from ..openapi import Operation, operation, path
from .prescriptions import ACTION_NAMES

SCOPE = "rx:verify"
TECHNICIAN = "technician"
MAX_BODY = 16 * 1024
#: refusals that are about the prescription's current state, not about the request
_CONFLICTS = frozenset({"claimed_by_other", "claim_required", "wrong_state"})


@dataclass(frozen=True, slots=True)
class Situation:
    """What an action decides on."""

    rx: Prescription
    user_id: uuid.UUID
    who: Caller
    findings: list[tuple[str, str]]
    body: dict[str, Any]
    now: dt.datetime

    @property
    def claim(self) -> Claim | None:
        rx = self.rx
        if rx.claimed_by is None or rx.claimed_until is None:
            return None
        return Claim(str(rx.claimed_by), rx.claimed_until)

    def in_review_with_claim(self) -> None:
        if self.rx.state == State.AWAITING_REVIEW:
            raise VerificationError("claim_required", "Claim the prescription first.")
        if self.rx.state != State.IN_REVIEW:
            raise VerificationError("wrong_state", f"The prescription is {self.rx.state}.")
        verification.require_claim(self.claim, str(self.user_id), self.now)


@dataclass(slots=True)
class Change:
    """What an action does: a transition, the claim afterwards, rows to add, audit detail."""

    to_state: State | None
    reason: str
    claim: Claim | None
    rows: list[object] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def _claim(s: Situation) -> Change:
    claim = verification.take_claim(s.claim, str(s.user_id), s.now)
    if s.rx.state == State.AWAITING_REVIEW:
        return Change(State.IN_REVIEW, "claimed for review", claim)
    if s.rx.state == State.IN_REVIEW:
        return Change(None, "claim renewed", claim)
    raise VerificationError("wrong_state", f"The prescription is {s.rx.state}.")


def _release(s: Situation) -> Change:
    s.in_review_with_claim()
    return Change(State.AWAITING_REVIEW, "released to the queue", None)


def _approve(s: Situation) -> Change:
    s.in_review_with_claim()
    if s.rx.dea_schedule and not s.who.controlled_substances:
        raise VerificationError(
            "controlled_substance_permission",
            "Approving controlled substances needs that permission on your account.",
        )
    overrides = s.body.get("overrides", {})
    if not isinstance(overrides, dict):
        raise VerificationError("overrides_invalid", "overrides must map finding codes to reasons.")
    accepted = verification.approval_overrides(s.findings, overrides)
    reason = "approved" + "".join(f"; override {code}: {why}" for code, why in accepted.items())
    return Change(State.APPROVED, reason, None, detail={"overrides": accepted})


def _reject(s: Situation) -> Change:
    s.in_review_with_claim()
    code = verification.reason_code(s.body.get("reason_code"), verification.REJECT_REASONS)
    text = verification.reason_text(s.body.get("text"))
    return Change(State.REJECTED, f"rejected ({code}): {text}", None, detail={"reason_code": code})


def _clarify(s: Situation) -> Change:
    s.in_review_with_claim()
    code = verification.reason_code(s.body.get("reason_code"), verification.CLARIFY_REASONS)
    text = verification.reason_text(s.body.get("text"))
    request = ClarificationRequest(
        prescription_id=s.rx.id, requested_by=s.user_id, reason_code=code, text=text
    )
    return Change(
        State.CLARIFICATION_REQUESTED,
        f"clarification requested ({code}): {text}",
        None,
        rows=[request],
        detail={"reason_code": code},
    )


def _note(s: Situation) -> Change:
    note = PrescriptionNote(
        prescription_id=s.rx.id,
        author_id=s.user_id,
        text=verification.reason_text(s.body.get("text")),
    )
    return Change(None, "note added", s.claim, rows=[note])


Decide = Callable[[Situation], Change]
Handler = Callable[[web.Request], Awaitable[web.Response]]


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


def _action(name: str, decide: Decide, roles: tuple[str, ...], body: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        who = await caller(request, SCOPE)
        user_id = who.require_role(*roles)
        rx_id = path_uuid(request, "prescription")
        payload = await read_json_object(request, MAX_BODY) if body else {}
        rx = await _perform(request, who, user_id, rx_id, name, decide, payload)
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


async def _perform(
    request: web.Request,
    who: Caller,
    user_id: uuid.UUID,
    rx_id: uuid.UUID,
    name: str,
    decide: Decide,
    body: dict[str, Any],
) -> Prescription:
    """Decide and apply in one transaction; a refusal is raised after its audit entry is
    committed."""
    async with audit.refusable(request.app[DATABASE]) as session:
        rx = await session.scalar(
            select(Prescription)
            .where(Prescription.id == rx_id, Prescription.pharmacy_id == who.pharmacy_id)
            .with_for_update()
        )
        if rx is None:
            await audit.refuse(
                session,
                who.actor,
                _event(name, rx_id, "not_found", {}),
                NotFound("No such prescription."),
            )
        findings = [
            (row.code, row.severity)
            for row in await session.execute(
                select(Finding.code, Finding.severity).where(Finding.prescription_id == rx_id)
            )
        ]
        now = utcnow()
        try:
            change = decide(Situation(rx, user_id, who, findings, body, now))
        except VerificationError as exc:
            detail = {"refused": exc.code, "codes": list(exc.codes)}
            await audit.refuse(
                session, who.actor, _event(name, rx_id, "refused", detail), _problem(exc)
            )
        if change.to_state is not None:
            step = workflow.move(
                State(rx.state), change.to_state, str(who.actor), change.reason, now
            )
            session.add(
                PrescriptionTransition(
                    prescription_id=rx.id,
                    from_state=rx.state,
                    to_state=step.to_state.value,
                    actor=step.actor,
                    reason=step.reason,
                    at=step.at,
                )
            )
            rx.state = step.to_state.value
        rx.claimed_by = uuid.UUID(change.claim.holder) if change.claim else None
        rx.claimed_until = change.claim.until if change.claim else None
        rx.updated_at = now
        session.add_all(change.rows)
        detail = {"state": rx.state, **change.detail}
        await audit.add(session, who.actor, _event(name, rx_id, "success", detail))
    return rx


def _event(name: str, rx_id: uuid.UUID, outcome: str, detail: dict[str, Any]) -> audit.Event:
    return audit.Event(
        f"prescription.{name}", "prescription", str(rx_id), outcome=outcome, detail=detail
    )


def _problem(exc: VerificationError) -> Problem:
    extra = {"codes": list(exc.codes)} if exc.codes else {}
    if exc.code in _CONFLICTS:
        problem: Problem = Conflict(exc.detail, extra=extra)
        problem.code = exc.code
        return problem
    if exc.code == "controlled_substance_permission":
        forbidden = Forbidden(exc.detail)
        forbidden.code = exc.code
        return forbidden
    return Unprocessable(exc.code, exc.detail, extra=extra)


def _claim_json(rx: Prescription) -> dict[str, Any] | None:
    if rx.claimed_by is None or rx.claimed_until is None:
        return None
    return {"user_id": str(rx.claimed_by), "until": rx.claimed_until.isoformat()}


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
