"""Prescription reads. Every caller sees only its own pharmacy; every read is audited."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from eprescribe.workflow import State

from .. import audit, auth
from ..db.models import Prescription
from ..errors import BadRequest, Forbidden, NotFound
from ..typedefs import CLIENT_ID, DATABASE, PROXIES

SCOPE = "rx:read"
MAX_LIMIT = 200
STATES = frozenset(s.value for s in State)


def _caller(request: web.Request) -> audit.Actor:
    """The authenticated caller and the pharmacy it may see (403 if bound to none)."""
    token = auth.require(request, SCOPE)
    request[CLIENT_ID] = token.client_id
    if not token.pharmacy_id:
        raise Forbidden("The client is not bound to a pharmacy.")
    return audit.Actor(
        "client",
        token.client_id,
        uuid.UUID(token.pharmacy_id),
        request.app[PROXIES].client_ip(request),
    )


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= maximum:
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}.")
    return int(raw)


async def list_prescriptions(request: web.Request) -> web.Response:
    """``GET /api/v1/prescriptions?state=&message_id=&limit=&offset=``, oldest first."""
    actor = _caller(request)
    query = select(Prescription).where(Prescription.pharmacy_id == actor.pharmacy_id)
    state = request.query.get("state")
    if state is not None:
        if state not in STATES:
            raise BadRequest(f"state must be one of: {', '.join(sorted(STATES))}.")
        query = query.where(Prescription.state == state)
    message_id = request.query.get("message_id")
    if message_id is not None:
        if not 1 <= len(message_id) <= 35:
            raise BadRequest("message_id must be 1 to 35 characters.")
        query = query.where(Prescription.message_id == message_id)
    limit = _int_param(request, "limit", 50, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 1_000_000)
    query = query.order_by(Prescription.received_at, Prescription.id).limit(limit).offset(offset)
    db = request.app[DATABASE]
    async with db.transaction() as session:
        rows = list(await session.scalars(query))
        await audit.add(
            session,
            actor,
            audit.Event(
                "prescription.list",
                "prescription",
                None,
                detail={"count": len(rows), "ids": [str(r.id) for r in rows]},
            ),
        )
    return web.json_response(
        {"items": [_summary(r) for r in rows], "limit": limit, "offset": offset}
    )


async def get_prescription(request: web.Request) -> web.Response:
    """``GET /api/v1/prescriptions/{id}``: the whole prescription with its history."""
    actor = _caller(request)
    try:
        rx_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound("No such prescription.") from None
    db = request.app[DATABASE]
    async with db.transaction() as session:
        rx = await session.scalar(
            select(Prescription)
            .where(Prescription.id == rx_id, Prescription.pharmacy_id == actor.pharmacy_id)
            .options(selectinload(Prescription.transitions), selectinload(Prescription.findings))
        )
        # a miss is audited too: probing for other pharmacies' IDs leaves a trace
        await audit.add(
            session,
            actor,
            audit.Event(
                "prescription.read",
                "prescription",
                str(rx_id),
                outcome="success" if rx else "not_found",
            ),
        )
    if rx is None:
        raise NotFound("No such prescription.")
    return web.json_response(_detail(rx))


def _summary(rx: Prescription) -> dict[str, Any]:
    return {
        "id": str(rx.id),
        "state": rx.state,
        "message_id": rx.message_id,
        "received_at": rx.received_at.isoformat(),
        "drug_description": rx.drug_description,
        "dea_schedule": rx.dea_schedule,
        "patient": _patient_name(rx.patient),
    }


def _patient_name(patient: dict[str, Any]) -> dict[str, Any]:
    name = patient.get("name") or {}
    return {
        "last": name.get("last"),
        "first": name.get("first"),
        "date_of_birth": (patient.get("date_of_birth") or {}).get("date"),
    }


def _detail(rx: Prescription) -> dict[str, Any]:
    return {
        "id": str(rx.id),
        "state": rx.state,
        "message_id": rx.message_id,
        "prescriber_order_number": rx.prescriber_order_number,
        "received_at": rx.received_at.isoformat(),
        "written_date": rx.written_date.isoformat(),
        "patient": rx.patient,
        "prescriber": rx.prescriber,
        "medication": rx.medication,
        "details": rx.details,
        "findings": [
            {"code": f.code, "severity": f.severity, "message": f.message, "evidence": f.evidence}
            for f in rx.findings
        ],
        "history": [
            {
                "from": t.from_state,
                "to": t.to_state,
                "actor": t.actor,
                "reason": t.reason,
                "at": t.at.isoformat(),
            }
            for t in rx.transitions
        ],
    }
