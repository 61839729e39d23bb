"""A patient's profile, as the console shows it beside a prescription: demographics, recorded
allergies, active medications (accepted prescriptions whose supply has not run out), every
prescription of the profile and the pharmacists' notes on them; and recording an allergy,
which changes the patient's picture, so their open prescriptions are checked again. Own
pharmacy only; every read and change is audited, a miss too."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import select

from eprescribe.checks import supply_ends
from eprescribe.ncpdp import MedicationPrescribed, Patient, from_json, to_json
from eprescribe.workflow import ACCEPTED

from .. import audit
from ..callers import PHARMACIST, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import NotFound, Unprocessable
from ..http import path_uuid, read_json_as, respond
from ..openapi import Operation, Timestamp, operation, path
from ..prescriptions import store
from ..prescriptions.actions import SCOPE as VERIFY_SCOPE
from ..prescriptions.actions import TECHNICIAN
from ..prescriptions.models import Prescription, PrescriptionNote
from ..prescriptions.queue import SCOPE, FindingCounts, Summary, finding_counts, summary, usernames
from .models import PatientProfile

#: the most prescriptions one profile lists (newest first)
MAX_PRESCRIPTIONS = 200
#: an allergy entry, as long as SCRIPT's drug text; and the most entries one profile holds
ALLERGY_MAX = 105
MAX_ALLERGIES = 100
MAX_BODY = 4096


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
        counts = await finding_counts(session, rows)
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
    return respond(_profile(profile, rows, notes, names, counts))


def _profile(
    profile: PatientProfile,
    rows: list[Prescription],
    notes: list[PrescriptionNote],
    names: dict[uuid.UUID, str],
    counts: dict[uuid.UUID, FindingCounts],
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
        prescriptions=[summary(r, names, now, counts[r.id]) for r in rows],
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


class NewAllergy(msgspec.Struct, frozen=True, kw_only=True):
    allergy: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=ALLERGY_MAX,
            description="the allergen or drug as the patient reports it (resolved by the "
            "drug reference, like the allergies a prescription carries)",
        ),
    ]


class Allergies(msgspec.Struct, frozen=True, kw_only=True):
    allergies: list[str]
    rechecking: Annotated[
        int,
        msgspec.Meta(description="the patient's open prescriptions queued to be checked again"),
    ]


@operation(
    Operation(
        operation_id="addPatientAllergy",
        summary="Record an allergy: the patient's open prescriptions are checked again",
        scope=VERIFY_SCOPE,
        parameters=[path("id", "the patient profile")],
        body=NewAllergy,
        response=Allergies,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description="Allowed to: pharmacist, technician. An entry already recorded (in any "
        "letter case) changes nothing.",
    )
)
async def add_allergy(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/allergies``."""
    who = await caller(request, VERIFY_SCOPE)
    who.require_role(PHARMACIST, TECHNICIAN)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, NewAllergy, MAX_BODY)
    entry = " ".join(body.allergy.split())
    if not entry:
        raise Unprocessable("allergy_blank", "The allergy entry is blank.")
    async with audit.refusable(request.app[DATABASE]) as session:
        profile = await session.scalar(
            select(PatientProfile)
            .where(PatientProfile.id == patient_id, PatientProfile.pharmacy_id == who.pharmacy_id)
            .with_for_update()
        )
        event = audit.Event("patient.allergy.add", "patient", str(patient_id))
        if profile is None:
            await audit.refuse(
                session,
                who.actor,
                replace(event, outcome="not_found"),
                NotFound("No such patient."),
            )
        known = {a.casefold() for a in profile.allergies}
        stale: list[uuid.UUID] = []
        if entry.casefold() not in known:
            if len(known) >= MAX_ALLERGIES:
                await audit.refuse(
                    session,
                    who.actor,
                    replace(event, outcome="refused", detail={"refused": "too_many"}),
                    Unprocessable("allergies_full", f"A profile holds {MAX_ALLERGIES} entries."),
                )
            profile.allergies = [*profile.allergies, entry]
            profile.updated_at = utcnow()
            await session.flush()
            stale = await session.run_sync(store.picture_changed, [patient_id])
        allergies = list(profile.allergies)
        await audit.add(session, who.actor, replace(event, detail={"rechecking": len(stale)}))
    request.app[store.PRESCRIPTIONS].recheck(stale)
    return respond(Allergies(allergies=allergies, rechecking=len(stale)))
