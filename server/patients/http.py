"""A patient's profile, as the console shows it beside a prescription: demographics, recorded
allergies, active medications (accepted prescriptions whose supply has not run out), every
prescription of the profile and the pharmacists' notes on them. Own pharmacy only; every
read is audited, a miss too."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select

from eprescribe.checks import supply_ends
from eprescribe.ncpdp import MedicationPrescribed, from_json
from eprescribe.workflow import ACCEPTED

from .. import audit
from ..callers import caller
from ..db import DATABASE
from ..db.models import PatientProfile, Prescription, PrescriptionNote, utcnow
from ..errors import NotFound
from ..http import path_uuid
from ..openapi import Operation, operation, path
from ..prescriptions.queue import SCOPE, summary, usernames

#: the most prescriptions one profile lists (newest first)
MAX_PRESCRIPTIONS = 200


@operation(
    Operation(
        operation_id="getPatient",
        summary="A patient's profile: allergies, active medications, prescriptions, notes",
        scope=SCOPE,
        parameters=[path("id", "the patient profile")],
        response={
            "type": "object",
            "required": ["id", "name", "allergies", "active_medications", "prescriptions"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "object"},
                "date_of_birth": {"type": "string", "format": "date"},
                "allergies": {"type": "array", "items": {"type": "string"}},
                "active_medications": {"type": "array", "items": {"type": "object"}},
                "prescriptions": {"type": "array", "items": {"type": "object"}},
                "notes": {"type": "array", "items": {"type": "object"}},
            },
        },
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
    return web.json_response(_profile(profile, rows, notes, names))


def _profile(
    profile: PatientProfile,
    rows: list[Prescription],
    notes: list[PrescriptionNote],
    names: dict[uuid.UUID, str],
) -> dict[str, Any]:
    now = utcnow()
    today = now.date()
    drugs = {r.id: r.drug_description for r in rows}
    return {
        "id": str(profile.id),
        "name": profile.demographics.get("name") or {},
        "date_of_birth": profile.date_of_birth.isoformat(),
        "gender": profile.gender,
        "demographics": profile.demographics,
        "allergies": profile.allergies,
        "active_medications": [
            {
                "prescription_id": str(r.id),
                "drug_description": r.drug_description,
                "supply_ends": ends.isoformat(),
            }
            for r in rows
            if r.state in ACCEPTED
            and (
                ends := supply_ends(
                    from_json(MedicationPrescribed, r.medication), r.received_at.date()
                )
            )
            >= today
        ],
        "prescriptions": [summary(r, names, now) for r in rows],
        "notes": [
            {
                "prescription_id": str(n.prescription_id),
                "drug_description": drugs[n.prescription_id],
                "author": names.get(n.author_id),
                "text": n.text,
                "at": n.created_at.isoformat(),
            }
            for n in notes
        ],
    }
