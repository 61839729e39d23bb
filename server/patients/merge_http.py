"""The match-review queue and profile merges in the console: the prescriptions whose patient
matched weakly or ambiguously, with their candidate profiles, linked by a pharmacist to one or
to a new profile; two profiles merged, and a merge undone. Pharmacists act, technicians read;
own pharmacy only (another's prescription, profile or merge is 404, audited as a miss); every
read and change audited. The rules and writes are :mod:`.merges`'."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import replace
from typing import Annotated, Any, NoReturn

import msgspec
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.ncpdp import Patient, from_json, to_json

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..errors import BadRequest, NotFound
from ..http import path_uuid, query_int, read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation, path, query
from ..prescriptions import store
from ..prescriptions.actions import SCOPE as ACT_SCOPE
from ..prescriptions.actions import TECHNICIAN
from ..prescriptions.queue import SCOPE as READ_SCOPE
from . import merges
from .models import PatientMerge, PatientProfile

MAX_LIMIT = 100
MAX_BODY = 1024


class CandidateView(msgspec.Struct, frozen=True, kw_only=True):
    patient_id: uuid.UUID
    name: dict[str, Any]
    date_of_birth: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]
    gender: str
    postal_code: str
    demographics: dict[str, Any]
    agree: Annotated[
        list[str], msgspec.Meta(description="fields that agree with the prescription's patient")
    ]
    differ: Annotated[list[str], msgspec.Meta(description="fields that differ")]


class ReviewItem(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: uuid.UUID
    received_at: Timestamp
    state: str
    drug_description: str
    patient: Annotated[
        dict[str, Any], msgspec.Meta(description="the prescription's patient as received")
    ]
    match: Annotated[str, msgspec.Meta(description="weak or ambiguous, as the checks found it")]
    candidates: list[CandidateView]


class ReviewQueue(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ReviewItem]
    next: Annotated[
        str | None, msgspec.Meta(description="the cursor of the next page (after=)")
    ] = None


class LinkBody(Body, frozen=True, kw_only=True):
    patient_id: Annotated[uuid.UUID, msgspec.Meta(description="the candidate profile")]


class LinkResult(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: uuid.UUID
    patient_id: uuid.UUID
    created: bool
    rechecking: int


class MergeBody(Body, frozen=True, kw_only=True):
    merged_id: Annotated[
        uuid.UUID, msgspec.Meta(description="the profile merged into this one (the survivor)")
    ]


class MergeView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    merged_at: Timestamp
    unmerged_at: Timestamp | None
    moved: Annotated[dict[str, int], msgspec.Meta(description="the rows moved, per kind")]
    rechecking: int = 0


class MergeList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MergeView]


def _view(record: PatientMerge, rechecking: int = 0) -> MergeView:
    return MergeView(
        id=record.id,
        survivor_id=record.survivor_id,
        merged_id=record.merged_id,
        merged_at=record.created_at.isoformat(),
        unmerged_at=record.unmerged_at.isoformat() if record.unmerged_at else None,
        moved=merges.counts_of(record.moved),
        rechecking=rechecking,
    )


def _cursor(at: dt.datetime, key: uuid.UUID) -> str:
    raw = f"{at.astimezone(dt.UTC).isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(request: web.Request) -> tuple[dt.datetime, uuid.UUID] | None:
    raw = request.query.get("after")
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, key = text.split("|")
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError(at)
        return moment, uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("after is not a cursor this API gave.") from None


def _candidate(c: merges.Candidate) -> CandidateView:
    p = c.profile
    demographics = from_json(Patient, p.demographics)
    return CandidateView(
        patient_id=p.id,
        name=to_json(demographics.name) if demographics.name else {},
        date_of_birth=p.date_of_birth.isoformat(),
        gender=p.gender,
        postal_code=p.postal_code,
        demographics=to_json(demographics),
        agree=list(c.agree),
        differ=list(c.differ),
    )


def _item(entry: merges.Entry) -> ReviewItem:
    rx = entry.rx
    return ReviewItem(
        prescription_id=rx.id,
        received_at=rx.received_at.isoformat(),
        state=rx.state,
        drug_description=rx.drug_description,
        patient=to_json(from_json(Patient, rx.patient)),
        match=str(entry.match.get("kind", "weak")),
        candidates=[_candidate(c) for c in entry.candidates],
    )


async def _reader(request: web.Request) -> Caller:
    who = await caller(request, READ_SCOPE)
    who.require_role(PHARMACIST, TECHNICIAN)
    return who


async def _pharmacist(request: web.Request) -> Caller:
    who = await caller(request, ACT_SCOPE)
    who.require_role(PHARMACIST)
    return who


@operation(
    Operation(
        operation_id="listMatchReview",
        summary="The match-review queue: prescriptions whose patient matched weakly or "
        "ambiguously, with their candidate profiles",
        description="Oldest first; keyset pagination with after (the previous page's next). "
        "Each candidate says which fields agree and which differ. Allowed to: pharmacist, "
        "technician.",
        scope=READ_SCOPE,
        parameters=[
            query("after", {"type": "string"}, "the cursor of the previous page"),
            query("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}, "page size"),
        ],
        response=ReviewQueue,
        errors=("400", "401", "403"),
    )
)
async def list_queue(request: web.Request) -> web.Response:
    """``GET /api/v1/match-review``."""
    who = await _reader(request)
    limit = query_int(request, "limit", 50, MAX_LIMIT)
    after = _after(request)
    async with request.app[DATABASE].transaction() as session:
        entries = await session.run_sync(merges.queue, who.pharmacy_id, after, limit)
        await audit.add(
            session,
            who.actor,
            audit.Event(
                "patient.match.list",
                "prescription",
                None,
                detail={
                    "prescriptions": [str(e.rx.id) for e in entries],
                    "patients": sorted({str(c.profile.id) for e in entries for c in e.candidates}),
                },
            ),
        )
    items = [_item(e) for e in entries]
    last = entries[-1].rx if len(entries) == limit and entries else None
    return respond(
        ReviewQueue(items=items, next=_cursor(last.received_at, last.id) if last else None)
    )


async def _refuse(
    session: AsyncSession, who: Caller, event: audit.Event, refused: merges.Refused
) -> NoReturn:
    """End the unit of work with what :mod:`.merges` refused, audited with its outcome (and,
    unless a miss, the problem's code)."""
    detail = dict(event.detail)
    if refused.outcome != "not_found":
        detail["refused"] = refused.problem.code
    await audit.refuse(
        session, who.actor, replace(event, outcome=refused.outcome, detail=detail), refused.problem
    )


async def _link(request: web.Request, create: bool) -> web.Response:
    who = await _pharmacist(request)
    rx_id = path_uuid(request, "prescription")
    profile_id = None if create else (await read_json_as(request, LinkBody, MAX_BODY)).patient_id
    action = "patient.match.create" if create else "patient.match.link"
    async with audit.refusable(request.app[DATABASE]) as session:
        try:
            done = await session.run_sync(
                merges.link, who.actor, who.pharmacy_id, rx_id, profile_id
            )
        except merges.Refused as refused:
            detail = {"patient_id": str(profile_id)} if profile_id else {}
            event = audit.Event(action, "prescription", str(rx_id), detail=detail)
            await _refuse(session, who, event, refused)
    request.app[store.PRESCRIPTIONS].recheck(done.stale)
    return respond(
        LinkResult(
            prescription_id=rx_id,
            patient_id=done.patient_id,
            created=done.created,
            rechecking=len(done.stale),
        )
    )


@operation(
    Operation(
        operation_id="linkMatchReview",
        summary="Link a prescription of the match-review queue to a candidate profile",
        description="The prescription is checked again with the profile's whole picture. "
        "Allowed to: pharmacist. 409 already_linked, not_in_review, profile_merged; 422 "
        "not_a_candidate (the profile does not share name and date of birth).",
        scope=ACT_SCOPE,
        parameters=[path("id", "the prescription")],
        body=LinkBody,
        response=LinkResult,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
    )
)
async def link(request: web.Request) -> web.Response:
    """``POST /api/v1/match-review/{id}/link``."""
    return await _link(request, create=False)


@operation(
    Operation(
        operation_id="createFromMatchReview",
        summary="Make a new profile from a queued prescription's patient and link it",
        description="Allowed to: pharmacist. 409 already_linked, not_in_review.",
        scope=ACT_SCOPE,
        parameters=[path("id", "the prescription")],
        response=LinkResult,
        errors=("401", "403", "404", "409", "422"),
    )
)
async def create(request: web.Request) -> web.Response:
    """``POST /api/v1/match-review/{id}/create``."""
    return await _link(request, create=True)


@operation(
    Operation(
        operation_id="mergePatients",
        summary="Merge another profile of the pharmacy into this one (the survivor)",
        description="Every prescription, consult, notification, contact point (an address "
        "the survivor has stays), the preferences (when the survivor has none) and the "
        "allergies it lacks move to the survivor; the merged profile is kept, marked merged. "
        "The open prescriptions of both are checked again. Allowed to: pharmacist. 422 "
        "merge_self; 409 already_merged, survivor_merged.",
        scope=ACT_SCOPE,
        parameters=[path("id", "the profile kept (survivor)")],
        body=MergeBody,
        response=MergeView,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
    )
)
async def merge(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/merge``."""
    who = await _pharmacist(request)
    survivor_id = path_uuid(request, "patient")
    body = await read_json_as(request, MergeBody, MAX_BODY)
    user_id = who.require_role(PHARMACIST)
    async with audit.refusable(request.app[DATABASE]) as session:
        try:
            done = await session.run_sync(
                merges.merge, who.actor, user_id, who.pharmacy_id, survivor_id, body.merged_id
            )
        except merges.Refused as refused:
            detail = {"merged_id": str(body.merged_id)}
            event = audit.Event("patient.merge", "patient", str(survivor_id), detail=detail)
            await _refuse(session, who, event, refused)
    request.app[store.PRESCRIPTIONS].recheck(done.stale)
    return respond(_view(done.merge, len(done.stale)))


@operation(
    Operation(
        operation_id="listPatientMerges",
        summary="The merges a profile took part in (kept or merged), newest first",
        description="Allowed to: pharmacist, technician.",
        scope=READ_SCOPE,
        parameters=[path("id", "the patient profile")],
        response=MergeList,
        errors=("401", "403", "404"),
    )
)
async def list_merges(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/merges``."""
    who = await _reader(request)
    patient_id = path_uuid(request, "patient")
    event = audit.Event("patient.merge.list", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        profile = await session.scalar(
            select(PatientProfile.id).where(
                PatientProfile.id == patient_id, PatientProfile.pharmacy_id == who.pharmacy_id
            )
        )
        await audit.found(session, who.actor, event, profile, NotFound("No such patient."))
        found = await session.run_sync(merges.merges_of, who.pharmacy_id, patient_id)
        await audit.add(session, who.actor, event)
    return respond(MergeList(items=[_view(m) for m in found]))


@operation(
    Operation(
        operation_id="getPatientMerge",
        summary="One merge: both profiles and the rows it moved",
        description="Allowed to: pharmacist, technician.",
        scope=READ_SCOPE,
        parameters=[path("id", "the merge")],
        response=MergeView,
        errors=("401", "403", "404"),
    )
)
async def get_merge(request: web.Request) -> web.Response:
    """``GET /api/v1/patient-merges/{id}``."""
    who = await _reader(request)
    merge_id = path_uuid(request, "merge")
    event = audit.Event("patient.merge.read", "patient_merge", str(merge_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await session.run_sync(merges.find_merge, who.pharmacy_id, merge_id)
        record = await audit.found(session, who.actor, event, found, NotFound("No such merge."))
        await audit.add(session, who.actor, event)
    return respond(_view(record))


@operation(
    Operation(
        operation_id="unmergePatients",
        summary="Undo a merge exactly: the rows it moved go back to the merged profile",
        description="Allowed to: pharmacist. 409 already_unmerged, survivor_merged (undo the "
        "later merge first), unmerge_not_exact (a row the merge moved is no longer with the "
        "kept profile; the detail says which kinds).",
        scope=ACT_SCOPE,
        parameters=[path("id", "the merge")],
        response=MergeView,
        errors=("401", "403", "404", "409"),
    )
)
async def unmerge(request: web.Request) -> web.Response:
    """``POST /api/v1/patient-merges/{id}/unmerge``."""
    who = await _pharmacist(request)
    merge_id = path_uuid(request, "merge")
    user_id = who.require_role(PHARMACIST)
    async with audit.refusable(request.app[DATABASE]) as session:
        try:
            done = await session.run_sync(
                merges.unmerge, who.actor, user_id, who.pharmacy_id, merge_id
            )
        except merges.Refused as refused:
            detail = {"merge_id": str(merge_id)}
            event = audit.Event("patient.unmerge", "patient_merge", str(merge_id), detail=detail)
            await _refuse(session, who, event, refused)
    request.app[store.PRESCRIPTIONS].recheck(done.stale)
    return respond(_view(done.merge, len(done.stale)))
