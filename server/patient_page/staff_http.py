"""The staff's side of the patients' refill requests: the open ones of their pharmacy
(``GET /api/v1/refill-requests``) and closing one once acted on
(``POST /api/v1/refill-requests/{id}/close``: the fill started, the renewal asked, or
declined). Own pharmacy only; another's request is 404, audited as a miss."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec
from aiohttp import web
from sqlalchemy import select

from eprescribe.ncpdp import Patient, from_json, to_json
from eprescribe.patient_page import WORDS, status_of

from .. import audit
from ..callers import PHARMACIST, caller
from ..db import DATABASE
from ..errors import NotFound
from ..http import path_uuid, read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation, path
from ..patients.models import PatientProfile
from ..prescriptions.actions import SCOPE as VERIFY_SCOPE
from ..prescriptions.actions import TECHNICIAN
from ..prescriptions.models import Prescription
from ..prescriptions.queue import SCOPE
from . import store
from .models import RefillRequest


class StaffRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: Literal["refill", "renewal"]
    state: str
    prescription_id: uuid.UUID
    drug: str
    rx_number: str | None
    prescription_status: str
    patient_id: uuid.UUID
    patient: dict[str, str]
    created_at: Timestamp


class StaffRequests(msgspec.Struct, frozen=True, kw_only=True):
    items: list[StaffRequest]


class Closing(Body, frozen=True):
    state: Literal["done", "declined"] = "done"


def _item(row: RefillRequest, rx: Prescription, profile: PatientProfile) -> StaffRequest:
    demographics = from_json(Patient, profile.demographics)
    name = to_json(demographics.name) if demographics.name else {}
    return StaffRequest(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        state=row.state,
        prescription_id=rx.id,
        drug=rx.drug_description,
        rx_number=rx.rx_number,
        prescription_status=WORDS[status_of(rx.state)],
        patient_id=profile.id,
        patient={k: str(v) for k, v in name.items() if v is not None}
        if isinstance(name, dict)
        else {},
        created_at=row.created_at.isoformat(),
    )


@operation(
    Operation(
        operation_id="listRefillRequests",
        summary="Patients' open refill and renewal requests from their page",
        scope=SCOPE,
        response=StaffRequests,
        errors=("401", "403"),
        description="Oldest first. A refill: start the fill (POST "
        "/api/v1/prescriptions/{id}/fills); a renewal: ask the prescriber (POST "
        "/api/v1/prescriptions/{id}/request_renewal); then close the request.",
    )
)
async def list_requests(request: web.Request) -> web.Response:
    """``GET /api/v1/refill-requests``."""
    who = await caller(request, SCOPE)
    async with request.app[DATABASE].transaction() as session:
        found = await session.execute(
            select(RefillRequest, Prescription, PatientProfile)
            .join(Prescription, Prescription.id == RefillRequest.prescription_id)
            .join(PatientProfile, PatientProfile.id == RefillRequest.patient_id)
            .where(RefillRequest.pharmacy_id == who.pharmacy_id, RefillRequest.state == "open")
            .order_by(RefillRequest.created_at)
            .limit(200)
        )
        items = [_item(row, rx, profile) for row, rx, profile in found]
        event = audit.Event(
            "refill_request.list",
            "patient",
            None,
            detail={"patients": sorted({str(i.patient_id) for i in items})},
        )
        await audit.add(session, who.actor, event)
    return respond(StaffRequests(items=items))


@operation(
    Operation(
        operation_id="closeRefillRequest",
        summary="Close a patient's refill request once acted on (done or declined)",
        scope=VERIFY_SCOPE,
        parameters=[path("id", "the refill request")],
        body=Closing,
        response=StaffRequest,
        errors=("400", "401", "403", "404", "413", "415"),
        description="Allowed to: pharmacist, technician.",
    )
)
async def close_request(request: web.Request) -> web.Response:
    """``POST /api/v1/refill-requests/{id}/close``."""
    who = await caller(request, VERIFY_SCOPE)
    user_id = who.require_role(PHARMACIST, TECHNICIAN)
    request_id = path_uuid(request, "refill request")
    body = await read_json_as(request, Closing, 1024)
    event = audit.Event("refill_request.close", "refill_request", str(request_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        row = await session.get(RefillRequest, request_id, with_for_update=True)
        if row is None or row.pharmacy_id != who.pharmacy_id:
            await audit.refuse(
                session,
                who.actor,
                audit.Event(event.action, event.resource_type, event.resource_id, "not_found"),
                NotFound("No such refill request."),
            )
        if row.state == "open":
            await store.close_request(session, row, body.state, user_id)
        rx = await session.get_one(Prescription, row.prescription_id)
        profile = await session.get_one(PatientProfile, row.patient_id)
        detail = {"state": row.state, "patient_id": str(row.patient_id)}
        await audit.add(
            session,
            who.actor,
            audit.Event(event.action, event.resource_type, event.resource_id, detail=detail),
        )
    return respond(_item(row, rx, profile))
