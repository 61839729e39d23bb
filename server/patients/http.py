"""A patient's profile, as the console shows it beside a prescription: demographics, recorded
allergies, active medications (accepted prescriptions whose supply has not run out), every
prescription of the profile and the pharmacists' notes on them. Own pharmacy only; every
read is audited, a miss too."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import select

from eprescribe.checks import supply_ends
from eprescribe.ncpdp import MedicationPrescribed, Patient, from_json, to_json
from eprescribe.workflow import ACCEPTED

from .. import audit
from ..callers import caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import NotFound
from ..http import path_uuid, respond
from ..openapi import Operation, Timestamp, operation, path
from ..prescriptions.models import Prescription, PrescriptionNote
from ..prescriptions.queue import SCOPE, Summary, summary, usernames
from .models import PatientProfile

#: the most prescriptions one profile lists (newest first)
MAX_PRESCRIPTIONS = 200


class ActiveMedication(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: uuid.UUID
    drug_description: str
    supply_ends: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]


class PatientNote(msgspec.Struct, frozen=True, kw_only=True):
    """A note on one of the patient's prescriptions."""

    prescription_id: uuid.UUID
    drug_description: str
    author: str | None
    text: str
    at: Timestamp


class PatientView(msgspec.Struct, frozen=True, kw_only=True):
    """A patient's profile as the console shows it beside a prescription."""

    id: uuid.UUID
    name: Annotated[dict[str, Any], msgspec.Meta(description="the name as received")]
    date_of_birth: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]
    gender: str
    demographics: Annotated[
        dict[str, Any], msgspec.Meta(description="name, address and contact as received")
    ]
    allergies: list[str]
    active_medications: list[ActiveMedication]
    prescriptions: list[Summary]
    notes: list[PatientNote]


@operation(
    Operation(
        operation_id="getPatient",
        summary="A patient's profile: allergies, active medications, prescriptions, notes",
        scope=SCOPE,
        parameters=[path("id", "the patient profile")],
        response=PatientView,
        errors=("401", "403", "404"),
    )
)
async def get_patient(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}``."""
    who = await caller(request, SCOPE)
    patient_id = path_uuid(request, "patient")
    async with request.app[DATABASE].transaction() as session:
        profile = await session.scalar(
            select(PatientProfile).where(
                PatientProfile.id == patient_id, PatientProfile.pharmacy_id == who.pharmacy_id
            )
        )
        rows = (
            list(
                await session.scalars(
                    select(Prescription)
                    .where(
                        Prescription.patient_id == patient_id,
                        Prescription.pharmacy_id == who.pharmacy_id,
                    )
                    .order_by(Prescription.received_at.desc())
                    .limit(MAX_PRESCRIPTIONS)
                )
            )
            if profile
            else []
        )
        notes = (
            list(
                await session.scalars(
                    select(PrescriptionNote)
                    .where(PrescriptionNote.prescription_id.in_([r.id for r in rows]))
                    .order_by(PrescriptionNote.id)
                )
            )
            if rows
            else []
        )
        names = await usernames(
            session,
            {n.author_id for n in notes} | {r.claimed_by for r in rows if r.claimed_by},
        )
        await audit.add(
            session,
            who.actor,
            audit.Event(
                "patient.read",
                "patient",
                str(patient_id),
                outcome="success" if profile else "not_found",
            ),
        )
    if profile is None:
        raise NotFound("No such patient.")
    return respond(_profile(profile, rows, notes, names))


def _profile(
    profile: PatientProfile,
    rows: list[Prescription],
    notes: list[PrescriptionNote],
    names: dict[uuid.UUID, str],
) -> PatientView:
    now = utcnow()
    today = now.date()
    drugs = {r.id: r.drug_description for r in rows}
    demographics = from_json(Patient, profile.demographics)
    return PatientView(
        id=profile.id,
        name=to_json(demographics.name) if demographics.name else {},
        date_of_birth=profile.date_of_birth.isoformat(),
        gender=profile.gender,
        demographics=to_json(demographics),
        allergies=list(profile.allergies),
        active_medications=[
            ActiveMedication(
                prescription_id=r.id,
                drug_description=r.drug_description,
                supply_ends=ends.isoformat(),
            )
            for r in rows
            if r.state in ACCEPTED and (ends := _supply_ends(r)) >= today
        ],
        prescriptions=[summary(r, names, now) for r in rows],
        notes=[
            PatientNote(
                prescription_id=n.prescription_id,
                drug_description=drugs[n.prescription_id],
                author=names.get(n.author_id),
                text=n.text,
                at=n.created_at.isoformat(),
            )
            for n in notes
        ],
    )


def _supply_ends(rx: Prescription) -> dt.date:
    """The last day an accepted prescription lasts, refills included."""
    return supply_ends(from_json(MedicationPrescribed, rx.medication), rx.received_at.date())
