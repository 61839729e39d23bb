"""Shipping a ready fill to a delivery patient: the one writer of ``shipments``, and its routes.

- ``POST /api/v1/fills/{id}/shipment`` (carrier, tracking number): the fill must be the
  pharmacy's (else 404, audited as a miss), ``ready`` and not shipped yet (409
  ``wrong_state``, ``already_shipped``), its patient one who chose delivery (409
  ``not_delivery``), the tracking number the carrier's form (422 ``tracking_invalid``,
  ``carrier_unknown``). The patient is told (``shipped``, with the tracking link), in the same
  unit of work, published after the commit.
- ``POST /api/v1/fills/{id}/shipment/delivered``: ``shipped`` to ``delivered`` (409 unless
  shipped).
- ``GET /api/v1/fills/{id}/shipment``: the shipment (404 when the fill has none).

Every change and read is audited (``fill.ship``, ``fill.delivered``, ``fill.shipment.read``),
refusals too. A shipped fill is out of the return-to-stock sweep and the not-collected
reminder.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Literal, NoReturn

import msgspec
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe.dispensing import shipping as rules
from eprescribe.dispensing.fills import FillState
from eprescribe.verification import VerificationError

from .. import audit
from ..callers import Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import Conflict, NotFound, Problem, Unprocessable
from ..http import path_uuid, read_json_as, respond
from ..notifications import TRIGGERS
from ..openapi import Body, Operation, Timestamp, operation, path
from ..patients.models import PatientPreferences
from ..prescriptions.models import Prescription
from .models import Fill, Shipment

MAX_BODY = 1024
READ_SCOPE = "rx:read"
SCOPE = "rx:verify"
#: who may ship and record a delivery
STAFF = ("pharmacist", "technician")
_FILL = [path("id", "the fill")]


class ShipBody(Body, frozen=True):
    carrier: Annotated[str, msgspec.Meta(description="usps, ups, fedex or dhl", max_length=16)]
    tracking_number: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class ShipmentView(msgspec.Struct, frozen=True, kw_only=True):
    fill_id: uuid.UUID
    state: Annotated[
        Literal["shipped", "delivered"],
        msgspec.Meta(description="shipped: out for delivery; delivered"),
    ]
    carrier: str
    tracking_number: str
    tracking_url: str
    shipped_at: Timestamp
    delivered_at: Timestamp | None


def _view(row: Shipment) -> ShipmentView:
    return ShipmentView(
        fill_id=row.fill_id,
        state=row.state,  # type: ignore[arg-type]
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        tracking_url=row.tracking_url,
        shipped_at=row.shipped_at.isoformat(),
        delivered_at=row.delivered_at.isoformat() if row.delivered_at else None,
    )


def _event(action: str, fill_id: uuid.UUID, outcome: str = "success", **detail: str) -> audit.Event:
    return audit.Event(f"fill.{action}", "fill", str(fill_id), outcome=outcome, detail=detail)


async def _fill(
    session: AsyncSession, who: Caller, fill_id: uuid.UUID, event: audit.Event
) -> tuple[Fill, Prescription]:
    """The pharmacy's fill (locked) and its prescription; else 404, audited as a miss."""
    found = (
        await session.execute(
            select(Fill, Prescription)
            .join(Prescription, Prescription.id == Fill.prescription_id)
            .where(Fill.id == fill_id, Fill.pharmacy_id == who.pharmacy_id)
            .with_for_update(of=Fill)
        )
    ).first()
    fill, rx = await audit.found(session, who.actor, event, found, NotFound("No such fill."))
    return fill, rx


async def _refuse(
    session: AsyncSession, who: Caller, event: audit.Event, problem: Problem
) -> NoReturn:
    detail = {**event.detail, "refused": problem.code}
    await audit.refuse(
        session, who.actor, replace(event, outcome="refused", detail=detail), problem
    )


def _conflict(code: str, detail: str) -> Conflict:
    problem = Conflict(detail)
    problem.code = code
    return problem


@operation(
    Operation(
        operation_id="shipFill",
        summary="Ship a ready fill to a delivery patient (carrier and tracking number)",
        scope=SCOPE,
        parameters=_FILL,
        body=ShipBody,
        response=ShipmentView,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
        description="Allowed to: pharmacist, technician. 409: not ready (wrong_state), "
        "already shipped, the patient did not choose delivery (not_delivery). 422: unknown "
        "carrier, a tracking number not of the carrier's form. The patient is notified.",
    )
)
async def ship(request: web.Request) -> web.Response:
    """``POST /api/v1/fills/{id}/shipment``."""
    who = await caller(request, SCOPE)
    who.require_role(*STAFF)
    fill_id = path_uuid(request, "fill")
    body = await read_json_as(request, ShipBody, MAX_BODY)
    event = _event("ship", fill_id)
    triggers = request.app.get(TRIGGERS)
    async with audit.refusable(request.app[DATABASE]) as session:
        fill, rx = await _fill(session, who, fill_id, event)
        try:
            tracking = rules.tracking(body.carrier, body.tracking_number)
        except VerificationError as exc:
            await _refuse(session, who, event, Unprocessable(exc.code, exc.detail))
        await _may_ship(session, who, fill, rx, event)
        now = utcnow()
        row = Shipment(
            fill_id=fill.id, pharmacy_id=fill.pharmacy_id, carrier=tracking.carrier,
            tracking_number=tracking.number, tracking_url=tracking.url,
            state=rules.ShipmentState.SHIPPED.value, shipped_by=who.user_id, shipped_at=now,
        )  # fmt: skip
        session.add(row)
        await session.flush()
        await session.run_sync(_shipped, fill.pharmacy_id, rx.patient_id, fill.id, str(who.actor))
        if triggers is not None:
            await session.run_sync(
                lambda s: triggers.shipped(
                    s,
                    pharmacy_id=fill.pharmacy_id,
                    patient_id=rx.patient_id,
                    fill_id=fill.id,
                    carrier=tracking.carrier.upper(),
                    tracking_number=tracking.number,
                    tracking_url=tracking.url,
                    now=now,
                )
            )
        told = triggers.written(session) if triggers is not None else []
        await audit.add(session, who.actor, replace(event, detail={"carrier": tracking.carrier}))
    if triggers is not None:
        triggers.publish(told)
    response = respond(_view(row))
    response.set_status(201)
    return response


#: what another feature does in the unit of work of a fill shipped (the payments' delivery
#: fee), plugged in by that feature's setup: (session, pharmacy, patient, fill, actor)
Shipped = Callable[[Session, uuid.UUID, uuid.UUID | None, uuid.UUID, str], None]
ON_SHIPPED: list[Shipped] = []


def _shipped(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID | None, fill_id: uuid.UUID,
    actor: str,
) -> None:  # fmt: skip
    for hook in ON_SHIPPED:
        hook(session, pharmacy_id, patient_id, fill_id, actor)


async def _may_ship(
    session: AsyncSession, who: Caller, fill: Fill, rx: Prescription, event: audit.Event
) -> None:
    if await session.get(Shipment, fill.id) is not None:
        await _refuse(session, who, event, _conflict("already_shipped", "The fill was shipped."))
    if fill.state != FillState.READY.value:
        await _refuse(session, who, event, _conflict("wrong_state", "Only a ready fill ships."))
    how = (
        await session.scalar(
            select(PatientPreferences.pickup_or_delivery).where(
                PatientPreferences.patient_id == rx.patient_id
            )
        )
        if rx.patient_id is not None
        else None
    )
    if how != "delivery":
        problem = _conflict("not_delivery", "The patient did not choose delivery.")
        await _refuse(session, who, event, problem)


@operation(
    Operation(
        operation_id="deliveredFill",
        summary="Record that a shipped fill was delivered",
        scope=SCOPE,
        parameters=_FILL,
        response=ShipmentView,
        errors=("401", "403", "404", "409"),
        description="Allowed to: pharmacist, technician. 409 unless shipped (not_shipped, "
        "already delivered: wrong_state).",
    )
)
async def delivered(request: web.Request) -> web.Response:
    """``POST /api/v1/fills/{id}/shipment/delivered``."""
    who = await caller(request, SCOPE)
    who.require_role(*STAFF)
    fill_id = path_uuid(request, "fill")
    event = _event("delivered", fill_id)
    async with audit.refusable(request.app[DATABASE]) as session:
        fill, _ = await _fill(session, who, fill_id, event)
        row = await session.get(Shipment, fill.id)
        if row is None:
            await _refuse(
                session, who, event, _conflict("not_shipped", "The fill was not shipped.")
            )
        if row.state != rules.ShipmentState.SHIPPED.value:
            await _refuse(session, who, event, _conflict("wrong_state", "It was delivered."))
        row.state, row.delivered_at = rules.ShipmentState.DELIVERED.value, utcnow()
        await audit.add(session, who.actor, event)
    return respond(_view(row))


@operation(
    Operation(
        operation_id="getFillShipment",
        summary="A fill's shipment (state shipped: out for delivery; delivered)",
        scope=READ_SCOPE,
        parameters=_FILL,
        response=ShipmentView,
        errors=("401", "403", "404"),
    )
)
async def get_shipment(request: web.Request) -> web.Response:
    """``GET /api/v1/fills/{id}/shipment``."""
    who = await caller(request, READ_SCOPE)
    fill_id = path_uuid(request, "fill")
    event = audit.Event("fill.shipment.read", "fill", str(fill_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        fill, _ = await _fill(session, who, fill_id, event)
        row = await session.get(Shipment, fill.id)
        if row is None:
            await audit.refuse(
                session, who.actor, replace(event, outcome="none"), NotFound("Not shipped.")
            )
        await audit.add(session, who.actor, event)
    return respond(_view(row))


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/fills/{id}/shipment", get_shipment)
    app.router.add_post("/api/v1/fills/{id}/shipment", ship)
    app.router.add_post("/api/v1/fills/{id}/shipment/delivered", delivered)
