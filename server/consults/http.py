"""Video consults over ``/api/v1``: a pharmacist schedules one for a patient of their pharmacy
(optionally about a prescription), gets the single-use invite link, reads and cancels it.

The rules are :mod:`signaling.consults`; this module stores its values (the invite only as
its SHA-256: the link is shown once, here) and audits every read and change. The signaling
WebSocket that runs the call itself comes with the rest of issue 5.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Annotated, Any, NoReturn

import msgspec
from aiohttp import web
from sqlalchemy import literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.ncpdp import Patient, from_json, to_json
from signaling import consults as rules

from .. import audit
from ..admin.models import Pharmacy
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import BadRequest, Conflict, NotFound, Problem
from ..http import (
    PROXIES,
    keyset_cursor,
    path_uuid,
    query_cursor,
    query_int,
    read_json_as,
    respond,
)
from ..notifications import TRIGGERS
from ..openapi import Body, Operation, Timestamp, operation, path, query
from ..patients.models import PatientProfile
from ..prescriptions.models import Prescription
from ..settings import SETTINGS
from . import store
from .invites import seal_invite
from .models import ConsultRow
from .ws import ROOMS

SCOPE = "consults"


class NewConsult(Body, frozen=True):
    """A consult to schedule."""

    patient_id: Annotated[
        uuid.UUID,
        msgspec.Meta(
            description="the patient's profile in the caller's pharmacy: the patient_id of one "
            "of their prescriptions (GET /api/v1/prescriptions/{id}, set once the checks "
            "matched the patient), which is the id of GET /api/v1/patients/{id}"
        ),
    ]
    prescription_id: Annotated[
        uuid.UUID | msgspec.UnsetType,
        msgspec.Meta(description="the prescription the consult is about, if any"),
    ] = msgspec.UNSET


class ConsultStep(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    """One step of a consult's history."""

    from_: rules.ConsultState | None
    to: rules.ConsultState
    actor: str
    reason: str
    at: Timestamp


class Consult(msgspec.Struct, frozen=True, kw_only=True):
    """A consult: its state and history."""

    id: uuid.UUID
    state: rules.ConsultState
    patient_id: uuid.UUID
    prescription_id: uuid.UUID | None
    invite_expires_at: Timestamp
    counselling: Annotated[
        str | None, msgspec.Meta(extra_json_schema={"enum": [*rules.COUNSELLING, None]})
    ]
    notes: Annotated[str | None, msgspec.Meta(description="the counselling notes, once ended")]
    history: list[ConsultStep]
    invite_url: Annotated[
        str | msgspec.UnsetType,
        msgspec.Meta(
            description="the patient's single-use link, only in the reply that created the "
            "consult (the hub keeps only its digest): send it to the patient"
        ),
    ] = msgspec.UNSET
    quality: Annotated[
        dict[str, dict[str, Any]] | msgspec.UnsetType,
        msgspec.Meta(
            description="each side's latest getStats summary (bitrate_kbps, fps, "
            "packet_loss, rtt_ms, at), by role, when the consult is read"
        ),
    ] = msgspec.UNSET


@operation(
    Operation(
        operation_id="createConsult",
        summary="Schedule a video consult and get the patient's single-use invite link",
        scope=SCOPE,
        body=NewConsult,
        response=Consult,
        errors=("400", "401", "403", "404", "413", "415"),
        description="A pharmacist (scope consults) schedules a consult with a patient of "
        "their pharmacy; the reply carries the invite link, shown this once. The patient "
        "opens it in a browser; no account is needed (docs/signaling.md).",
    )
)
async def create_consult(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    pharmacist = who.require_role(PHARMACIST)
    body = await read_json_as(request, NewConsult, 4096)
    patient_id = body.patient_id
    rx_id = None if isinstance(body.prescription_id, msgspec.UnsetType) else body.prescription_id
    now = utcnow()
    notify = request.app.get(TRIGGERS)
    told: list[uuid.UUID] = []
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
                invite_sealed=seal_invite(request.app[SETTINGS], consult.id, token),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            store.add_steps(session, row.id, consult.history)
            invite_url = f"{request.app[SETTINGS].issuer}/consult/{token}"
            if notify is not None:
                await session.run_sync(
                    lambda s: notify.consult_scheduled(
                        s, pharmacy_id=row.pharmacy_id, patient_id=patient_id,
                        consult_id=row.id, invite_url=invite_url, now=now,
                    )
                )  # fmt: skip
                told = notify.written(session)
            await _audit(session, who, "consult.create", row.id, "success")
            found = _consult(row, consult.history, invite_url=invite_url)
    if notify is not None:
        notify.publish(told)
    if found is None:
        raise NotFound("No such patient or prescription in your pharmacy.")
    return respond(found)


@operation(
    Operation(
        operation_id="getConsult",
        summary="A consult: state and history",
        scope=SCOPE,
        parameters=[path("id", "the consult")],
        response=Consult,
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
    return respond(_consult(row, consult.history, quality=quality))


@operation(
    Operation(
        operation_id="cancelConsult",
        summary="Cancel a consult that has not started (its pharmacist only)",
        scope=SCOPE,
        parameters=[path("id", "the consult")],
        response=Consult,
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
        await session.run_sync(store.called_off, row, str(who.actor))
        await _audit(session, who, "consult.cancel", consult_id, "success")
    # a patient already waiting is told at once
    await request.app[ROOMS].announce(dataclasses.replace(cancelled, revision=row.revision))
    return respond(_consult(row, cancelled.history))


#: the states a consult can still leave (listed by default)
_OPEN = tuple(state.value for state, moves in rules.ALLOWED.items() if moves)


class ListedConsult(msgspec.Struct, frozen=True, kw_only=True):
    """A consult in the pharmacist's list."""

    id: uuid.UUID
    state: rules.ConsultState
    patient_id: uuid.UUID
    patient: Annotated[
        dict[str, Any],
        msgspec.Meta(description="the patient's name parts (last, first, ...) and date_of_birth"),
    ]
    prescription_id: uuid.UUID | None
    created_at: Timestamp
    invite_expires_at: Timestamp


class Consults(msgspec.Struct, frozen=True, kw_only=True):
    """The pharmacist's consults, newest first (a page: at most ``limit``)."""

    items: list[ListedConsult]
    next_cursor: Annotated[
        str | None,
        msgspec.Meta(description="pass as cursor for the next page (null: the last page)"),
    ] = None


#: a page of the consult list (the most, and the default)
CONSULTS_MAX = 100


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
            ),
            query(
                "limit",
                {"type": "integer", "minimum": 0, "maximum": CONSULTS_MAX},
                f"page size (default {CONSULTS_MAX})",
            ),
            query(
                "cursor",
                {"type": "string", "maxLength": 200},
                "the next_cursor of the previous page (keyset paging: a page costs the same "
                "however many consults ended before)",
            ),
        ],
        response=Consults,
    )
)
async def list_consults(request: web.Request) -> web.Response:
    """``GET /api/v1/consults``: the caller's own consults, newest first, a page at a time
    (``limit``, ``cursor``): one state's index range (``ix_consults_pharmacist_state``) from
    where the previous page ended."""
    who = await caller(request, SCOPE)
    pharmacist = who.require_role(PHARMACIST)
    state = request.query.get("state")
    if state is not None and state not in {s.value for s in rules.ConsultState}:
        raise BadRequest("state must be a consult state.")
    wanted = (state,) if state else _OPEN
    limit = query_int(request, "limit", CONSULTS_MAX, CONSULTS_MAX)
    after = query_cursor(request)
    if after is not None and after[0] is not None:
        raise BadRequest("cursor is not a cursor of this list.")
    statement = (
        select(ConsultRow, PatientProfile.demographics, PatientProfile.date_of_birth)
        .join(PatientProfile, PatientProfile.id == ConsultRow.patient_id)
        .where(
            ConsultRow.pharmacy_id == who.pharmacy_id,
            ConsultRow.pharmacist_id == pharmacist,
            ConsultRow.state.in_(wanted),
        )
    )
    if after is not None:
        statement = statement.where(
            tuple_(ConsultRow.created_at, ConsultRow.id)
            < tuple_(
                literal(after[1], ConsultRow.created_at.type), literal(after[2], ConsultRow.id.type)
            )
        )
    statement = statement.order_by(ConsultRow.created_at.desc(), ConsultRow.id.desc()).limit(limit)
    async with request.app[DATABASE].transaction() as session:
        rows = (await session.execute(statement)).all() if limit else []
        event = audit.Event(
            "consult.list", "consult", None, detail={"ids": [str(r[0].id) for r in rows]}
        )
        await audit.add(session, who.actor, event)
    return respond(
        Consults(
            items=[
                ListedConsult(
                    id=row.id,
                    state=rules.ConsultState(row.state),
                    patient_id=row.patient_id,
                    patient=_patient(demographics, born),
                    prescription_id=row.prescription_id,
                    created_at=row.created_at.isoformat(),
                    invite_expires_at=row.invite_expires_at.isoformat(),
                )
                for row, demographics, born in rows
            ],
            next_cursor=(
                keyset_cursor(None, rows[-1][0].created_at, rows[-1][0].id)
                if rows and len(rows) == limit
                else None
            ),
        )
    )


def _patient(demographics: dict[str, Any], born: dt.date) -> dict[str, Any]:
    """The name parts of a profile's demographics (read back typed) and the birth date."""
    name = from_json(Patient, demographics).name
    return {**(to_json(name) if name else {}), "date_of_birth": born.isoformat()}


class InviteCheck(Body, frozen=True):
    """An invite link to check."""

    invite: Annotated[
        str,
        msgspec.Meta(min_length=20, max_length=100, description="the last part of the invite link"),
    ]


class InviteStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The invite still opens its consult."""

    pharmacy: str
    invite_expires_at: Timestamp


@operation(
    Operation(
        operation_id="checkInvite",
        summary="Whether an invite link still opens its consult (the patient's page asks first)",
        scope=None,
        body=InviteCheck,
        response=InviteStatus,
        errors=("400", "404", "409"),
        description="404 invite_invalid; 409 invite_used (the consult is under way), "
        "invite_expired, or consult_over (ended or cancelled).",
    )
)
async def check_invite(request: web.Request) -> web.Response:
    """``POST /api/v1/invites/check`` (no account: the invite is the credential, in the body
    so it stays out of logs): 200, or a problem with the code the join would meet."""
    token = (await read_json_as(request, InviteCheck, 1024)).invite
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
    return respond(
        InviteStatus(pharmacy=hit.name, invite_expires_at=row.invite_expires_at.isoformat())
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


def _consult(
    row: ConsultRow,
    steps: tuple[rules.Step, ...],
    invite_url: str | msgspec.UnsetType = msgspec.UNSET,
    quality: dict[str, dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET,
) -> Consult:
    return Consult(
        id=row.id,
        state=rules.ConsultState(row.state),
        patient_id=row.patient_id,
        prescription_id=row.prescription_id,
        invite_expires_at=row.invite_expires_at.isoformat(),
        counselling=row.counselling,
        notes=row.notes,
        history=[
            ConsultStep(
                from_=s.from_state,
                to=s.to_state,
                actor=s.actor,
                reason=s.reason,
                at=s.at.isoformat(),
            )
            for s in steps
        ],
        invite_url=invite_url,
        quality=quality,
    )
