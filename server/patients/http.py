"""A patient's profile, as the console shows it: demographics, allergies (the prescriptions'
and the staff's, coded or free text), conditions (the prescriptions' diagnoses), medications
active, pending and past with their prescribers, the fills, every prescription of the profile
and the notes on them; recording and removing an allergy, which changes the patient's picture,
so their open prescriptions are checked again; the patient search. Own pharmacy only; every
read, search and change is audited, a miss too. The allergy entries' one writer is this
module."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import replace
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe import profile as rules
from eprescribe.checks import supply_ends
from eprescribe.ncpdp import (
    MedicationPrescribed,
    OrderDetails,
    Patient,
    Prescriber,
    from_json,
    to_json,
)
from eprescribe.workflow import ACCEPTED, PENDING, State

from .. import audit
from ..callers import PHARMACIST, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..dispensing.models import Fill
from ..errors import BadRequest, NotFound, Unprocessable
from ..http import path_uuid, query_int, read_json_as, respond
from ..openapi import Operation, Timestamp, operation, path, query
from ..prescriptions import store
from ..prescriptions.actions import SCOPE as VERIFY_SCOPE
from ..prescriptions.actions import TECHNICIAN
from ..prescriptions.models import Prescription, PrescriptionNote
from ..prescriptions.queue import (
    SCOPE,
    FindingCounts,
    PatientName,
    Summary,
    finding_counts,
    patient_name,
    summary,
    usernames,
)
from .models import PatientAllergy, PatientContact, PatientProfile

#: the most prescriptions one profile lists (newest first)
MAX_PRESCRIPTIONS = 200
#: the most fills one profile lists (newest first)
MAX_FILLS = 200
#: the most entries one profile holds (not removed)
MAX_ALLERGIES = 100
MAX_BODY = 4096
#: a search's page
SEARCH_LIMIT = 25
SEARCH_MAX = 100
SEARCH_TERM_MAX = 100


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


class AllergyView(msgspec.Struct, frozen=True, kw_only=True):
    """An allergy the profile lists: entered by staff (``id`` to remove it), or carried by a
    prescription (``prescription_id``; removed only by the prescriber's next message)."""

    id: uuid.UUID | None
    text: str
    code_system: rules.CodeSystem
    code: str | None
    reaction: str | None
    severity: rules.Severity | None
    source: rules.Source
    prescription_id: uuid.UUID | None = None
    added_by: str | None = None
    added_at: Timestamp | None = None


class ConditionView(msgspec.Struct, frozen=True, kw_only=True):
    """A diagnosis named by the patient's prescriptions."""

    code: str
    qualifier: Annotated[str, msgspec.Meta(description="SCRIPT's code qualifier, e.g. ABF")]
    description: str | None
    prescription_ids: list[uuid.UUID]


class PhoneView(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    number: str
    extension: str | None = None


class PrescriberView(msgspec.Struct, frozen=True, kw_only=True):
    """Who wrote a prescription and how to reach them, as the NewRx said."""

    name: str
    npi: str | None
    address: dict[str, Any] | None
    communication_numbers: list[PhoneView]


class MedicationView(msgspec.Struct, frozen=True, kw_only=True):
    """One prescription as a medication: ``active`` (accepted, supply lasts), ``pending``
    (not decided yet) or ``past`` (supply ran out, or cancelled)."""

    prescription_id: uuid.UUID
    drug_description: str
    status: Annotated[str, msgspec.Meta(extra_json_schema={"enum": ["active", "pending", "past"]})]
    state: State
    written_date: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]
    supply_ends: Annotated[str | None, msgspec.Meta(extra_json_schema={"format": "date"})]
    prescriber: PrescriberView


class FillView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    prescription_id: uuid.UUID
    drug_description: str
    number: int
    state: str
    quantity: str | None
    unit: str
    days_supply: int | None
    started_at: Timestamp
    ended_at: Timestamp | None


class PatientView(msgspec.Struct, frozen=True, kw_only=True):
    """A patient's profile as the console shows it."""

    id: uuid.UUID
    name: Annotated[dict[str, Any], msgspec.Meta(description="the name as received")]
    date_of_birth: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]
    gender: str
    demographics: Annotated[
        dict[str, Any], msgspec.Meta(description="name, address and contact as received")
    ]
    allergies: list[AllergyView]
    conditions: list[ConditionView]
    active_medications: list[ActiveMedication]
    medications: list[MedicationView]
    fills: list[FillView]
    prescriptions: list[Summary]
    notes: list[PatientNote]


@operation(
    Operation(
        operation_id="getPatient",
        summary="A patient's profile: allergies, conditions, medications, fills, notes",
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
    event = audit.Event("patient.read", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await _own(session, who.pharmacy_id, patient_id)
        profile = await audit.found(session, who.actor, event, found, NotFound("No such patient."))
        rows = list(
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
        ids = [r.id for r in rows]
        notes = (
            list(
                await session.scalars(
                    select(PrescriptionNote)
                    .where(PrescriptionNote.prescription_id.in_(ids))
                    .order_by(PrescriptionNote.id)
                )
            )
            if rows
            else []
        )
        fills = (
            list(
                await session.scalars(
                    select(Fill)
                    .where(Fill.prescription_id.in_(ids), Fill.pharmacy_id == who.pharmacy_id)
                    .order_by(Fill.started_at.desc(), Fill.id.desc())
                    .limit(MAX_FILLS)
                )
            )
            if rows
            else []
        )
        entries = await _entries(session, patient_id)
        names = await usernames(
            session,
            {n.author_id for n in notes}
            | {r.claimed_by for r in rows if r.claimed_by}
            | {a.added_by for a in entries if a.added_by},
        )
        counts = await finding_counts(session, rows)
        await audit.add(session, who.actor, event)
    return respond(_profile(profile, rows, notes, fills, entries, names, counts))


async def _own(
    session: AsyncSession, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, *, lock: bool = False
) -> PatientProfile | None:
    statement = select(PatientProfile).where(
        PatientProfile.id == patient_id, PatientProfile.pharmacy_id == pharmacy_id
    )
    return await session.scalar(statement.with_for_update() if lock else statement)


async def _entries(session: AsyncSession, patient_id: uuid.UUID) -> list[PatientAllergy]:
    """The staff's allergy entries on the profile, not removed, oldest first."""
    return list(
        await session.scalars(
            select(PatientAllergy)
            .where(PatientAllergy.patient_id == patient_id, PatientAllergy.removed_at.is_(None))
            .order_by(PatientAllergy.added_at, PatientAllergy.id)
        )
    )


def _profile(
    profile: PatientProfile,
    rows: list[Prescription],
    notes: list[PrescriptionNote],
    fills: list[Fill],
    entries: list[PatientAllergy],
    names: dict[uuid.UUID, str],
    counts: dict[uuid.UUID, FindingCounts],
) -> PatientView:
    now = utcnow()
    today = now.date()
    drugs = {r.id: r.drug_description for r in rows}
    demographics = from_json(Patient, profile.demographics)
    medications = [_medication(r, today) for r in rows if r.state != State.REJECTED]
    return PatientView(
        id=profile.id,
        name=to_json(demographics.name) if demographics.name else {},
        date_of_birth=profile.date_of_birth.isoformat(),
        gender=profile.gender,
        demographics=to_json(demographics),
        allergies=[*(_staff_allergy(a, names) for a in entries), *_sent_allergies(rows, entries)],
        conditions=_conditions(rows),
        active_medications=[
            ActiveMedication(
                prescription_id=m.prescription_id,
                drug_description=m.drug_description,
                supply_ends=m.supply_ends,
            )
            for m in medications
            if m.status == "active" and m.supply_ends is not None
        ],
        medications=medications,
        fills=[
            FillView(
                id=f.id,
                prescription_id=f.prescription_id,
                drug_description=drugs[f.prescription_id],
                number=f.number,
                state=f.state,
                quantity=f.quantity,
                unit=f.unit,
                days_supply=f.days_supply,
                started_at=f.started_at.isoformat(),
                ended_at=f.ended_at.isoformat() if f.ended_at else None,
            )
            for f in fills
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


def _staff_allergy(row: PatientAllergy, names: dict[uuid.UUID, str]) -> AllergyView:
    return AllergyView(
        id=row.id,
        text=row.text,
        code_system=rules.CodeSystem(row.code_system),
        code=row.code,
        reaction=row.reaction,
        severity=rules.Severity(row.severity) if row.severity else None,
        source=rules.Source.STAFF,
        added_by=names.get(row.added_by) if row.added_by else None,
        added_at=row.added_at.isoformat(),
    )


def _sent_allergies(rows: list[Prescription], entries: list[PatientAllergy]) -> list[AllergyView]:
    """The allergies the prescriptions carried (newest prescription first), each allergen once
    and not again when staff recorded it too."""
    seen = {
        rules.AllergyEntry(a.text, rules.CodeSystem(a.code_system), a.code, None, None).key
        for a in entries
    } | {("text", a.text.casefold()) for a in entries}
    views: list[AllergyView] = []
    for rx in rows:
        if rx.test:
            continue
        try:
            details = from_json(OrderDetails, rx.details)
        except (msgspec.ValidationError, TypeError, ValueError):
            continue
        for sent in details.allergies:
            entry = rules.from_prescription(sent)
            if entry is None or entry.key in seen or ("text", entry.text.casefold()) in seen:
                continue
            seen |= {entry.key, ("text", entry.text.casefold())}
            views.append(
                AllergyView(
                    id=None,
                    text=entry.text,
                    code_system=entry.code_system,
                    code=entry.code,
                    reaction=entry.reaction,
                    severity=None,
                    source=rules.Source.PRESCRIPTION,
                    prescription_id=rx.id,
                    added_at=rx.received_at.isoformat(),
                )
            )
    return views


def _conditions(rows: list[Prescription]) -> list[ConditionView]:
    by_rx = [(rx.id, from_json(MedicationPrescribed, rx.medication)) for rx in rows if not rx.test]
    found = rules.conditions(m for _, m in by_rx)
    return [
        ConditionView(
            code=c.code,
            qualifier=c.qualifier,
            description=c.description,
            prescription_ids=[
                rx_id
                for rx_id, m in by_rx
                if any(
                    code is not None
                    and code.qualifier == c.qualifier
                    and code.code.casefold() == c.code.casefold()
                    for d in m.diagnoses
                    for code in (d.primary, d.secondary)
                )
            ],
        )
        for c in found
    ]


def _medication(rx: Prescription, today: dt.date) -> MedicationView:
    medication = from_json(MedicationPrescribed, rx.medication)
    state = State(rx.state)
    ends = supply_ends(medication, rx.received_at.date()) if state in ACCEPTED else None
    if state in PENDING:
        status = "pending"
    elif ends is not None and ends >= today and state in ACCEPTED:
        status = "active"
    else:
        status = "past"
    return MedicationView(
        prescription_id=rx.id,
        drug_description=rx.drug_description,
        status=status,
        state=state,
        written_date=rx.written_date.isoformat(),
        supply_ends=ends.isoformat() if ends else None,
        prescriber=_prescriber(rx.prescriber),
    )


def _prescriber(stored: dict[str, Any]) -> PrescriberView:
    prescriber = from_json(Prescriber, stored)
    name = prescriber.name
    return PrescriberView(
        name=" ".join(p for p in (name.prefix, name.first, name.last, name.suffix) if p),
        npi=prescriber.npi,
        address=to_json(prescriber.address) if prescriber.address else None,
        communication_numbers=[
            PhoneView(kind=c.kind, number=c.number, extension=c.extension)
            for c in prescriber.communication_numbers
        ],
    )


# -- allergies --------------------------------------------------------------------------------


class NewAllergy(msgspec.Struct, frozen=True, kw_only=True):
    allergy: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=rules.ALLERGY_TEXT_MAX,
            description="the allergen or drug in words (the checks resolve it with the drug "
            "reference, like the allergies a prescription carries)",
        ),
    ]
    code_system: rules.CodeSystem = rules.CodeSystem.FREE_TEXT
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=rules.ALLERGY_CODE_MAX)] | None = (
        None
    )
    reaction: Annotated[str, msgspec.Meta(max_length=rules.REACTION_MAX)] | None = None
    severity: rules.Severity | None = None


class Allergies(msgspec.Struct, frozen=True, kw_only=True):
    allergies: Annotated[
        list[AllergyView], msgspec.Meta(description="the entries staff recorded, oldest first")
    ]
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
        description="Allowed to: pharmacist, technician. Coded (rxnorm, snomed, ndfrt, ndc, "
        "unii: code required) or free_text (no code), with the reaction and its severity. "
        "An entry already recorded (the same code, or the same words in any letter case) "
        "changes nothing.",
    )
)
async def add_allergy(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/allergies``."""
    who = await caller(request, VERIFY_SCOPE)
    user_id = who.require_role(PHARMACIST, TECHNICIAN)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, NewAllergy, MAX_BODY)
    try:
        entry = rules.allergy_entry(
            body.allergy, body.code_system, body.code, body.reaction, body.severity
        )
    except rules.ProfileError as error:
        raise Unprocessable("allergy_invalid", str(error)) from None
    async with audit.refusable(request.app[DATABASE]) as session:
        event = audit.Event("patient.allergy.add", "patient", str(patient_id))
        found = await _own(session, who.pharmacy_id, patient_id, lock=True)
        profile = await audit.found(session, who.actor, event, found, NotFound("No such patient."))
        entries = await _entries(session, patient_id)
        known = {
            rules.AllergyEntry(a.text, rules.CodeSystem(a.code_system), a.code, None, None).key
            for a in entries
        } | {("text", a.text.casefold()) for a in entries}
        stale: list[uuid.UUID] = []
        added: uuid.UUID | None = None
        if entry.key not in known and ("text", entry.text.casefold()) not in known:
            if len(entries) >= MAX_ALLERGIES:
                await audit.refuse(
                    session,
                    who.actor,
                    replace(event, outcome="refused", detail={"refused": "too_many"}),
                    Unprocessable("allergies_full", f"A profile holds {MAX_ALLERGIES} entries."),
                )
            row = PatientAllergy(
                id=uuid.uuid4(),
                patient_id=patient_id,
                pharmacy_id=who.pharmacy_id,
                text=entry.text,
                code_system=entry.code_system.value,
                code=entry.code,
                reaction=entry.reaction,
                severity=entry.severity.value if entry.severity else None,
                added_by=user_id,
                added_at=utcnow(),
            )
            session.add(row)
            entries.append(row)
            added = row.id
            profile.updated_at = utcnow()
            await session.flush()
            stale = await session.run_sync(store.picture_changed, [patient_id])
        names = await usernames(session, {a.added_by for a in entries if a.added_by})
        views = [_staff_allergy(a, names) for a in entries]
        await audit.add(
            session,
            who.actor,
            replace(
                event,
                detail={
                    "allergy_id": str(added) if added else None,
                    "code_system": entry.code_system.value,
                    "rechecking": len(stale),
                },
            ),
        )
    request.app[store.PRESCRIPTIONS].recheck(stale)
    return respond(Allergies(allergies=views, rechecking=len(stale)))


@operation(
    Operation(
        operation_id="removePatientAllergy",
        summary="Remove an allergy staff recorded: the patient's open prescriptions are checked "
        "again",
        scope=VERIFY_SCOPE,
        parameters=[path("id", "the patient profile"), path("allergy", "the allergy entry")],
        response=Allergies,
        errors=("401", "403", "404"),
        description="Allowed to: pharmacist, technician. The entry is kept as removed (by whom, "
        "when: the timeline shows it); a prescription's own allergies are not removed here.",
    )
)
async def remove_allergy(request: web.Request) -> web.Response:
    """``DELETE /api/v1/patients/{id}/allergies/{allergy}``."""
    who = await caller(request, VERIFY_SCOPE)
    user_id = who.require_role(PHARMACIST, TECHNICIAN)
    patient_id = path_uuid(request, "patient")
    try:
        allergy_id: uuid.UUID | None = uuid.UUID(request.match_info["allergy"])
    except ValueError:
        allergy_id = None
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await _own(session, who.pharmacy_id, patient_id, lock=True)
        event = audit.Event(
            "patient.allergy.remove",
            "patient",
            str(patient_id),
            detail={"allergy_id": str(allergy_id) if allergy_id else None},
        )
        profile = await audit.found(session, who.actor, event, found, NotFound("No such patient."))
        entry = (
            await session.scalar(
                select(PatientAllergy).where(
                    PatientAllergy.id == allergy_id,
                    PatientAllergy.patient_id == patient_id,
                    PatientAllergy.removed_at.is_(None),
                )
            )
            if allergy_id is not None
            else None
        )
        row = await audit.found(
            session, who.actor, event, entry, NotFound("No such allergy entry.")
        )
        row.removed_at = utcnow()
        row.removed_by = user_id
        profile.updated_at = utcnow()
        await session.flush()
        stale = await session.run_sync(store.picture_changed, [patient_id])
        entries = await _entries(session, patient_id)
        names = await usernames(session, {a.added_by for a in entries if a.added_by})
        views = [_staff_allergy(a, names) for a in entries]
        await audit.add(
            session, who.actor, replace(event, detail={**event.detail, "rechecking": len(stale)})
        )
    request.app[store.PRESCRIPTIONS].recheck(stale)
    return respond(Allergies(allergies=views, rechecking=len(stale)))


# -- search -----------------------------------------------------------------------------------


class PatientFound(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: PatientName
    gender: str


class PatientPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PatientFound]
    #: pass as ``after`` for the next page (None: the last page)
    next: str | None


@operation(
    Operation(
        operation_id="searchPatients",
        summary="Find the pharmacy's patients by name, birth date or phone",
        description='At least one term; all given must match. name: "Last", "Last, First" '
        'or "First Last", each a prefix, compared as the patient match compares names '
        "(case, accents, punctuation ignored); birth_date: YYYY-MM-DD; phone: a mobile "
        "contact point of the profile, normalised as contact points are (E.164, a national "
        "number read as US). By name then ID; keyset pagination with after (the previous "
        "page's next). Audited patient.search with the terms' names and the profiles shown, "
        "never the terms.",
        scope=SCOPE,
        parameters=[
            query("name", {"type": "string", "maxLength": SEARCH_TERM_MAX}, "the name"),
            query("birth_date", {"type": "string", "format": "date"}, "the date of birth"),
            query("phone", {"type": "string", "maxLength": SEARCH_TERM_MAX}, "a mobile number"),
            query("after", {"type": "string"}, "the cursor of the previous page"),
            query("limit", {"type": "integer", "minimum": 0, "maximum": SEARCH_MAX}, "page size"),
        ],
        response=PatientPage,
        errors=("400", "401", "403", "422"),
    )
)
async def search_patients(request: web.Request) -> web.Response:
    """``GET /api/v1/patients?name=&birth_date=&phone=``."""
    who = await caller(request, SCOPE)
    terms = {k: request.query.get(k) for k in ("name", "birth_date", "phone")}
    if any(v is not None and len(v) > SEARCH_TERM_MAX for v in terms.values()):
        raise Unprocessable("search_invalid", f"A term is at most {SEARCH_TERM_MAX} characters.")
    try:
        wanted = rules.search(terms["name"], terms["birth_date"], terms["phone"])
    except rules.ProfileError as error:
        raise Unprocessable("search_invalid", str(error)) from None
    limit = query_int(request, "limit", SEARCH_LIMIT, SEARCH_MAX)
    after = _search_after(request)
    # a merged profile is found as the profile it was merged into, not beside it
    statement = select(PatientProfile).where(
        PatientProfile.pharmacy_id == who.pharmacy_id, PatientProfile.merged_into_id.is_(None)
    )
    if wanted.last is not None:
        statement = statement.where(
            PatientProfile.last_name_key.startswith(wanted.last, autoescape=True)
        )
    if wanted.first is not None:
        statement = statement.where(
            PatientProfile.first_name_key.startswith(wanted.first, autoescape=True)
        )
    if wanted.born is not None:
        statement = statement.where(PatientProfile.date_of_birth == wanted.born)
    if wanted.phone is not None:
        statement = statement.where(
            PatientProfile.id.in_(
                select(PatientContact.patient_id).where(
                    PatientContact.kind == "mobile",
                    PatientContact.value == wanted.phone,
                    PatientContact.pharmacy_id == who.pharmacy_id,
                )
            )
        )
    if after is not None:
        # one row comparison: the index of the search's order (ix_patients_search) is read
        # from where the previous page ended, not from its start
        last, first, key = after
        statement = statement.where(
            tuple_(PatientProfile.last_name_key, PatientProfile.first_name_key, PatientProfile.id)
            > tuple_(
                literal(last, PatientProfile.last_name_key.type),
                literal(first, PatientProfile.first_name_key.type),
                literal(key, PatientProfile.id.type),
            )
        )
    statement = statement.order_by(
        PatientProfile.last_name_key, PatientProfile.first_name_key, PatientProfile.id
    ).limit(limit)
    async with request.app[DATABASE].transaction() as session:
        found = list(await session.scalars(statement)) if limit else []
        await audit.add(
            session,
            who.actor,
            audit.Event(
                "patient.search",
                "patient",
                None,
                detail={
                    "criteria": wanted.criteria,
                    "count": len(found),
                    "ids": [str(p.id) for p in found],
                },
            ),
        )
    following = _search_cursor(found[-1]) if found and len(found) == limit else None
    return respond(
        PatientPage(
            items=[
                PatientFound(
                    id=p.id,
                    name=patient_name(from_json(Patient, p.demographics)),
                    gender=p.gender,
                )
                for p in found
            ],
            next=following,
        )
    )


def _search_cursor(profile: PatientProfile) -> str:
    raw = f"{profile.last_name_key}|{profile.first_name_key}|{profile.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _search_after(request: web.Request) -> tuple[str, str, uuid.UUID] | None:
    raw = request.query.get("after")
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        last, first, key = text.split("|")
        return last, first, uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("after is not a cursor this API gave.") from None
