"""Med sync in the console: ``GET /api/v1/patients/{id}/med-sync`` proposes the short fills
that bring the patient's chronic medications to one pick-up day
(:func:`eprescribe.adherence.sync.sync_plan`), and ``POST`` records the pharmacist's acceptance
(the sync day, the cycle and the short fills as proposed; one row a patient, replaced by a
new acceptance). Accepting creates nothing else: the short fills are started from the fill
queue by the pharmacist, with the proposed quantity. Pharmacists only, own pharmacy only;
every read and acceptance audited.

A **chronic medication** is an accepted prescription of the patient with refills authorised
and a fill handed over whose days supply is at least :data:`CHRONIC_DAYS`: its last such fill
gives the day it was handed over (UTC), the days supply and the daily quantity (quantity over
days supply).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.adherence.sync import ChronicMed, SyncPlan, sync_plan
from eprescribe.dispensing.fills import FillState
from eprescribe.workflow import ACCEPTED

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..dispensing.models import Fill
from ..errors import Conflict, NotFound
from ..http import path_uuid, read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation, path
from ..patients.models import PatientProfile
from ..prescriptions.models import Prescription
from ..prescriptions.queue import SCOPE
from .models import MedSync

#: a fill of this many days or more is of a chronic medication (a month's supply, in packs)
CHRONIC_DAYS = 28
MAX_BODY = 1024
Day = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]


class ShortFillView(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: uuid.UUID
    drug_description: str
    starts_on: Day
    days_supply: Annotated[int, msgspec.Meta(description="0: already on the sync day")]
    quantity: Annotated[str, msgspec.Meta(description="exact decimal; round to what dispenses")]
    sync_on: Day
    stays_aligned: bool


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    anchor: Day
    cycle_days: int
    short_days: int
    fills: list[ShortFillView]


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    anchor: Day
    cycle_days: int
    fills: list[ShortFillView]
    accepted_by: uuid.UUID
    accepted_at: Timestamp


class MedSyncView(msgspec.Struct, frozen=True, kw_only=True):
    chronic: Annotated[int, msgspec.Meta(description="chronic medications found")]
    proposal: Annotated[Proposal | None, msgspec.Meta(description="none below two")]
    accepted: Accepted | None


class AcceptBody(Body, frozen=True):
    anchor: Annotated[Day | None, msgspec.Meta(description="the proposal's (default: it)")] = None


async def _chronic(
    session: AsyncSession, pharmacy_id: uuid.UUID, patient_id: uuid.UUID
) -> tuple[list[ChronicMed], dict[str, str]]:
    """The patient's chronic medications (by prescription ID), and their descriptions."""
    rows = await session.execute(
        select(
            Prescription.id,
            Prescription.drug_description,
            Prescription.medication,
            Fill.ended_at,
            Fill.days_supply,
            Fill.quantity,
        )
        .join(Fill, Fill.prescription_id == Prescription.id)
        .where(
            Prescription.pharmacy_id == pharmacy_id,
            Prescription.patient_id == patient_id,
            Prescription.state.in_([s.value for s in ACCEPTED]),
            Fill.state == FillState.COMPLETED.value,
            Fill.days_supply >= CHRONIC_DAYS,
        )
        .order_by(Fill.ended_at, Fill.id)
    )
    last: dict[str, ChronicMed] = {}
    names: dict[str, str] = {}
    for rx_id, name, medication, ended_at, days, quantity in rows:
        if not _refills(medication) or ended_at is None or not quantity or not days:
            continue
        key = str(rx_id)
        daily = Decimal(quantity) / Decimal(days)
        if daily > 0:
            last[key] = ChronicMed(key, ended_at.astimezone(dt.UTC).date(), days, daily)
            names[key] = name
    return sorted(last.values(), key=lambda m: m.key), names


def _refills(medication: dict[str, Any]) -> bool:
    refills = medication.get("number_of_refills")
    return isinstance(refills, int) and refills > 0


def _fills(plan: SyncPlan, names: dict[str, str]) -> list[ShortFillView]:
    return [
        ShortFillView(
            prescription_id=uuid.UUID(f.med),
            drug_description=names.get(f.med, ""),
            starts_on=f.starts_on.isoformat(),
            days_supply=f.days_supply,
            quantity=format(f.quantity.normalize(), "f") if f.quantity else "0",
            sync_on=f.sync_on.isoformat(),
            stays_aligned=f.stays_aligned,
        )
        for f in plan.fills
    ]


def _accepted(row: MedSync | None) -> Accepted | None:
    if row is None:
        return None
    return Accepted(
        anchor=row.anchor.isoformat(),
        cycle_days=row.cycle_days,
        fills=msgspec.convert(row.short_fills, list[ShortFillView]),
        accepted_by=row.accepted_by,
        accepted_at=row.accepted_at.isoformat(),
    )


async def _own(
    session: AsyncSession, who: Caller, patient_id: uuid.UUID, event: audit.Event
) -> None:
    found = await session.scalar(
        select(PatientProfile.id).where(
            PatientProfile.id == patient_id, PatientProfile.pharmacy_id == who.pharmacy_id
        )
    )
    await audit.found(session, who.actor, event, found, NotFound("No such patient."))


@operation(
    Operation(
        operation_id="getPatientMedSync",
        summary="The short fills that align a patient's chronic medications to one day",
        scope=SCOPE,
        parameters=[path("id", "the patient profile")],
        response=MedSyncView,
        errors=("401", "403", "404"),
        description="Allowed to: pharmacist. No proposal below two chronic medications "
        "(docs/patients.md).",
    )
)
async def get_med_sync(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/med-sync``."""
    who = await caller(request, SCOPE)
    who.require_role(PHARMACIST)
    patient_id = path_uuid(request, "patient")
    event = audit.Event("patient.med_sync.read", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        await _own(session, who, patient_id, event)
        meds, names = await _chronic(session, who.pharmacy_id, patient_id)
        row = await session.get(MedSync, patient_id)
        await audit.add(session, who.actor, event)
    proposal = None
    if len(meds) >= 2:
        plan = sync_plan(meds)
        proposal = Proposal(anchor=plan.anchor.isoformat(), cycle_days=plan.cycle_days,
                            short_days=plan.short_days, fills=_fills(plan, names))  # fmt: skip
    return respond(MedSyncView(chronic=len(meds), proposal=proposal, accepted=_accepted(row)))


@operation(
    Operation(
        operation_id="acceptPatientMedSync",
        summary="Accept a med sync proposal: the patient's sync day and short fills recorded",
        scope=SCOPE,
        parameters=[path("id", "the patient profile")],
        body=AcceptBody,
        response=MedSyncView,
        errors=("400", "401", "403", "404", "409", "413", "415"),
        description="Allowed to: pharmacist. The plan is computed again on the hub for the "
        "anchor given (the proposal's by default). 409 below two chronic medications. "
        "Nothing is filled automatically.",
    )
)
async def accept_med_sync(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/med-sync``."""
    who = await caller(request, SCOPE)
    user = who.require_role(PHARMACIST)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, AcceptBody, MAX_BODY)
    event = audit.Event("patient.med_sync.accepted", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        await _own(session, who, patient_id, event)
        meds, names = await _chronic(session, who.pharmacy_id, patient_id)
        if len(meds) < 2:
            problem = Conflict("Med sync needs two chronic medications or more.")
            problem.code = "too_few_medications"
            await audit.refuse(session, who.actor, replace(event, outcome="refused"), problem)
        plan = sync_plan(meds, dt.date.fromisoformat(body.anchor) if body.anchor else None)
        fills = _fills(plan, names)
        row = await session.get(MedSync, patient_id)
        if row is None:
            row = MedSync(patient_id=patient_id, pharmacy_id=who.pharmacy_id)
            session.add(row)
        row.anchor, row.cycle_days = plan.anchor, plan.cycle_days
        row.short_fills = msgspec.to_builtins(fills)
        row.accepted_by, row.accepted_at = user, utcnow()
        detail = {"anchor": plan.anchor.isoformat(), "cycle_days": plan.cycle_days,
                  "short_fills": sum(f.days_supply > 0 for f in fills)}  # fmt: skip
        await audit.add(session, who.actor, replace(event, detail=detail))
    proposal = Proposal(anchor=plan.anchor.isoformat(), cycle_days=plan.cycle_days,
                        short_days=plan.short_days, fills=fills)  # fmt: skip
    return respond(MedSyncView(chronic=len(meds), proposal=proposal, accepted=_accepted(row)))
