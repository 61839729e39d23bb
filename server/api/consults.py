"""Video consults over the API: a pharmacist schedules one for a patient of their pharmacy
(optionally about a prescription), gets the single-use invite link, reads and cancels it.

The rules are :mod:`signaling.consults`; this module stores its values (the invite only as
its SHA-256: the link is shown once, here) and audits every read and change. The signaling
WebSocket that runs the call itself comes with the rest of issue 5.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling import consults as rules

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..consults import store
from ..consults.ws import ROOMS
from ..db import DATABASE
from ..db.models import ConsultRow, PatientProfile, Pharmacy, Prescription, utcnow
from ..errors import BadRequest, Conflict, NotFound, Problem
from ..http import PROXIES, path_uuid, read_json_object
from ..openapi import Operation, operation, path, query
from ..settings import SETTINGS

SCOPE = "consults"
_CONSULT = {
    "type": "object",
    "required": ["id", "state", "patient_id", "history"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "state": {"enum": [s.value for s in rules.ConsultState]},
        "patient_id": {"type": "string", "format": "uuid"},
        "prescription_id": {"type": ["string", "null"], "format": "uuid"},
        "invite_url": {
            "type": "string",
            "description": "the patient's single-use link, only in the reply that created the "
            "consult (the hub keeps only its digest): send it to the patient",
        },
        "invite_expires_at": {"type": "string", "format": "date-time"},
        "counselling": {"enum": ["accepted", "refused", None]},
        "notes": {"type": ["string", "null"], "description": "the counselling notes, once ended"},
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to", "actor", "reason", "at"],
                "properties": {
                    "from": {"type": ["string", "null"]},
                    "to": {"type": "string"},
                    "actor": {"type": "string"},
                    "reason": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "quality": {
            "type": "object",
            "description": "each side's latest getStats summary (bitrate_kbps, fps, "
            "packet_loss, rtt_ms, at), when the consult is read",
        },
    },
}


@operation(
    Operation(
        operation_id="createConsult",
        summary="Schedule a video consult and get the patient's single-use invite link",
        scope=SCOPE,
        body={
            "type": "object",
            "required": ["patient_id"],
            "additionalProperties": False,
            "properties": {
                "patient_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "the patient's profile in the caller's pharmacy: the "
                    "patient_id of one of their prescriptions (GET /api/v1/prescriptions/{id}, "
                    "set once the checks matched the patient), which is the id of "
                    "GET /api/v1/patients/{id}",
                },
                "prescription_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "the prescription the consult is about, if any",
                },
            },
        },
        response=_CONSULT,
        errors=("400", "401", "403", "404", "413", "415"),
        description="A pharmacist (scope consults) schedules a consult with a patient of "
        "their pharmacy; the reply carries the invite link, shown this once. The patient "
        "opens it in a browser; no account is needed (docs/signaling.md).",
    )
)
async def create_consult(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    pharmacist = who.require_role(PHARMACIST)
    body = await read_json_object(request, 4096)
    if set(body) - {"patient_id", "prescription_id"}:
        raise BadRequest("Send patient_id and optionally prescription_id, nothing else.")
    patient_id = _uuid(body.get("patient_id"), "patient_id")
    rx_id = _uuid(body["prescription_id"], "prescription_id") if "prescription_id" in body else None
    now = utcnow()
    async with request.app[DATABASE].transaction() as session:
        if not await _owned(session, who, PatientProfile, patient_id) or (
            rx_id is not None and not await _owned(session, who, Prescription, rx_id)
        ):
            await _audit(session, who, "consult.create", None, "not_found")
            found = None
        else:
            consult, token = rules.schedule(
                str(uuid.uuid4()),
                str(pharmacist),
                str(patient_id),
                now,
                prescription_id=str(rx_id) if rx_id else None,
                ttl=dt.timedelta(seconds=request.app[SETTINGS].invite_ttl),
            )
            row = ConsultRow(
                id=uuid.UUID(consult.id),
                pharmacy_id=who.pharmacy_id,
                pharmacist_id=pharmacist,
                patient_id=patient_id,
                prescription_id=rx_id,
                state=consult.state.value,
                invite_digest=consult.invite_digest,
                invite_expires_at=consult.invite_expires_at,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            store.add_steps(session, row.id, consult.history)
            await _audit(session, who, "consult.create", row.id, "success")
            found = {
                **_json(row, consult.history),
                "invite_url": f"{request.app[SETTINGS].issuer}/consult/{token}",
            }
    if found is None:
        raise NotFound("No such patient or prescription in your pharmacy.")
    return web.json_response(found)


@operation(
    Operation(
        operation_id="getConsult",
        summary="A consult: state and history",
        scope=SCOPE,
        parameters=[path("id", "the consult")],
        response=_CONSULT,
        errors=("401", "403", "404"),
    )
)
async def get_consult(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(PHARMACIST)
    consult_id = path_uuid(request, "consult")
    async with request.app[DATABASE].transaction() as session:
        row, consult = await store.load(session, consult_id, who.pharmacy_id)
        quality = await store.latest_quality(session, consult_id) if row else {}
        await _audit(session, who, "consult.read", consult_id, "success" if row else "not_found")
    if row is None or consult is None:
        raise NotFound("No such consult.")
    return web.json_response({**_json(row, consult.history), "quality": quality})


@operation(
    Operation(
        operation_id="cancelConsult",
        summary="Cancel a consult that has not started (its pharmacist only)",
        scope=SCOPE,
        parameters=[path("id", "the consult")],
        response=_CONSULT,
        errors=("401", "403", "404", "409"),
    )
)
async def cancel_consult(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    pharmacist = who.require_role(PHARMACIST)
    consult_id = path_uuid(request, "consult")
    async with audit.refusable(request.app[DATABASE]) as session:
        row, consult = await store.load(session, consult_id, who.pharmacy_id, lock=True)
        if row is None or consult is None:
            await _refuse(session, who, "consult.cancel", consult_id, None)
        try:
            cancelled = rules.cancel(consult, str(pharmacist), utcnow())
        except rules.ConsultError as exc:
            await _refuse(session, who, "consult.cancel", consult_id, exc)
        store.save(session, row, consult, cancelled)
        await _audit(session, who, "consult.cancel", consult_id, "success")
    # a patient already waiting is told at once
    await request.app[ROOMS].announce(dataclasses.replace(cancelled, revision=row.revision))
    return web.json_response(_json(row, cancelled.history))


#: the states a consult can still leave (listed by default)
_OPEN = tuple(state.value for state, moves in rules.ALLOWED.items() if moves)
_LISTED = {
    "type": "object",
    "required": ["id", "state", "patient_id", "patient", "created_at", "invite_expires_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "state": {"enum": [s.value for s in rules.ConsultState]},
        "patient_id": {"type": "string", "format": "uuid"},
        "patient": {
            "type": "object",
            "description": "the patient's name parts (last, first, ...) and date_of_birth",
        },
        "prescription_id": {"type": ["string", "null"], "format": "uuid"},
        "created_at": {"type": "string", "format": "date-time"},
        "invite_expires_at": {"type": "string", "format": "date-time"},
    },
}


@operation(
    Operation(
        operation_id="listConsults",
        summary="The pharmacist's consults: open ones (scheduled, waiting, in a call) by default",
        scope=SCOPE,
        parameters=[
            query(
                "state",
                {"enum": [s.value for s in rules.ConsultState]},
                "only this state (default: every open one)",
            )
        ],
        response={
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _LISTED}},
        },
    )
)
async def list_consults(request: web.Request) -> web.Response:
    """``GET /api/v1/consults``: the caller's own consults, newest first (at most 100)."""
    who = await caller(request, SCOPE)
    pharmacist = who.require_role(PHARMACIST)
    state = request.query.get("state")
    if state is not None and state not in {s.value for s in rules.ConsultState}:
        raise BadRequest("state must be a consult state.")
    wanted = (state,) if state else _OPEN
    async with request.app[DATABASE].transaction() as session:
        rows = (
            await session.execute(
                select(ConsultRow, PatientProfile.demographics, PatientProfile.date_of_birth)
                .join(PatientProfile, PatientProfile.id == ConsultRow.patient_id)
                .where(
                    ConsultRow.pharmacy_id == who.pharmacy_id,
                    ConsultRow.pharmacist_id == pharmacist,
                    ConsultRow.state.in_(wanted),
                )
                .order_by(ConsultRow.created_at.desc())
                .limit(100)
            )
        ).all()
        event = audit.Event(
            "consult.list", "consult", None, detail={"ids": [str(r[0].id) for r in rows]}
        )
        await audit.add(session, who.actor, event)
    return web.json_response(
        {
            "items": [
                {
                    "id": str(row.id),
                    "state": row.state,
                    "patient_id": str(row.patient_id),
                    "patient": {
                        **(demographics.get("name") or {}),
                        "date_of_birth": born.isoformat(),
                    },
                    "prescription_id": str(row.prescription_id) if row.prescription_id else None,
                    "created_at": row.created_at.isoformat(),
                    "invite_expires_at": row.invite_expires_at.isoformat(),
                }
                for row, demographics, born in rows
            ]
        }
    )


@operation(
    Operation(
        operation_id="checkInvite",
        summary="Whether an invite link still opens its consult (the patient's page asks first)",
        scope=None,
        body={
            "type": "object",
            "required": ["invite"],
            "additionalProperties": False,
            "properties": {
                "invite": {
                    "type": "string",
                    "minLength": 20,
                    "maxLength": 100,
                    "description": "the last part of the invite link",
                }
            },
        },
        response={
            "type": "object",
            "required": ["pharmacy", "invite_expires_at"],
            "properties": {
                "pharmacy": {"type": "string"},
                "invite_expires_at": {"type": "string", "format": "date-time"},
            },
        },
        errors=("400", "404", "409"),
        description="404 invite_invalid; 409 invite_used (the consult is under way), "
        "invite_expired, or consult_over (ended or cancelled).",
    )
)
async def check_invite(request: web.Request) -> web.Response:
    """``POST /api/v1/invites/check`` (no account: the invite is the credential, in the body
    so it stays out of logs): 200, or a problem with the code the join would meet."""
    body = await read_json_object(request, 1024)
    token = body.get("invite")
    if set(body) != {"invite"} or not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise BadRequest("Send the invite, and nothing else.")
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await session.execute(
            select(ConsultRow.id, ConsultRow.pharmacy_id, Pharmacy.name)
            .join(Pharmacy, Pharmacy.id == ConsultRow.pharmacy_id)
            .where(ConsultRow.invite_digest == rules.token_digest(token))
        )
        hit = found.first()
        row, consult = (
            await store.load(session, hit.id, None, history=False) if hit else (None, None)
        )
        if row is None or consult is None or hit is None:
            raise _refused(rules.ConsultError("invite_invalid", "This invite link is not valid."))
        actor = audit.Actor("patient", str(row.patient_id), row.pharmacy_id, _ip(request))
        event = audit.Event("consult.invite_check", "consult", str(row.id))
        try:
            rules.check_invite(consult, token, utcnow())
        except rules.ConsultError as exc:
            refused = dataclasses.replace(event, outcome=exc.code)
            await audit.refuse(session, actor, refused, _refused(exc))
        await audit.add(session, actor, event)
    return web.json_response(
        {"pharmacy": hit.name, "invite_expires_at": row.invite_expires_at.isoformat()}
    )


def _refused(refusal: rules.ConsultError) -> Problem:
    """The problem for a refusal of the consult rules, with their stable code (an invite that
    is not one is 404, any other refusal 409)."""
    problem = (NotFound if refusal.code == "invite_invalid" else Conflict)(refusal.args[0])
    problem.code = refusal.code
    return problem


def _ip(request: web.Request) -> str | None:
    return request.app[PROXIES].client_ip(request)


async def _owned(session: AsyncSession, who: Caller, model: Any, key: uuid.UUID) -> bool:
    found = await session.scalar(
        select(model.id).where(model.id == key, model.pharmacy_id == who.pharmacy_id)
    )
    return found is not None


async def _audit(
    session: AsyncSession, who: Caller, action: str, consult_id: uuid.UUID | None, outcome: str
) -> None:
    await audit.add(session, who.actor, _event(action, consult_id, outcome))


async def _refuse(
    session: AsyncSession,
    who: Caller,
    action: str,
    consult_id: uuid.UUID,
    refusal: rules.ConsultError | None,
) -> NoReturn:
    """Audit a refused action and end its unit of work with the problem (no consult without
    a ``refusal`` of the consult rules)."""
    if refusal is None:
        event = _event(action, consult_id, "not_found")
        await audit.refuse(session, who.actor, event, NotFound("No such consult."))
    await audit.refuse(session, who.actor, _event(action, consult_id, "refused"), _refused(refusal))


def _event(action: str, consult_id: uuid.UUID | None, outcome: str) -> audit.Event:
    return audit.Event(action, "consult", str(consult_id) if consult_id else None, outcome=outcome)


def _json(row: ConsultRow, steps: tuple[rules.Step, ...]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "state": row.state,
        "patient_id": str(row.patient_id),
        "prescription_id": str(row.prescription_id) if row.prescription_id else None,
        "invite_expires_at": row.invite_expires_at.isoformat(),
        "counselling": row.counselling,
        "notes": row.notes,
        "history": [
            {
                "from": s.from_state.value if s.from_state else None,
                "to": s.to_state.value,
                "actor": s.actor,
                "reason": s.reason,
                "at": s.at.isoformat(),
            }
            for s in steps
        ],
    }


def _uuid(value: object, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value if isinstance(value, str) else "")
    except ValueError:
        raise BadRequest(f"{name} must be a UUID.") from None
