"""A patient's timeline, newest first: read from the tables that hold each event (nothing is
copied): the prescriptions' transitions (received, checked, approved, rejected, clarification,
cancelled ...), the requests to the prescriber (clarification, change, renewal, with the
outbox's delivery state) and their answers, the notes, the fills' transitions (hand-over is
the pick-up), the consults, the notifications with their delivery status, and the staff's
allergy entries (added, removed). One statement, a UNION ALL of one branch per source,
keyset-paginated on (at, key), where key is the source and the row's ID."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import uuid
from dataclasses import replace
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    ColumnExpressionArgument,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    cast,
    literal,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from .. import audit
from ..auth.models import User
from ..callers import caller
from ..consults.models import ConsultRow
from ..db import DATABASE
from ..db.models import UTCDateTime
from ..dispensing.models import Fill, FillTransition
from ..errors import BadRequest, NotFound
from ..http import path_uuid, query_int, respond
from ..notifications.models import Notification
from ..openapi import Operation, Timestamp, operation, path, query
from ..outbox.models import OutboundMessage
from ..prescriptions.models import (
    ClarificationRequest,
    PrescriberAnswer,
    Prescription,
    PrescriptionNote,
    PrescriptionTransition,
)
from ..prescriptions.queue import SCOPE
from ..settings import Settings
from .models import PatientAllergy, PatientProfile

PAGE = 50
PAGE_MAX = 200
KINDS = (
    "prescription",
    "request",
    "answer",
    "note",
    "fill",
    "consult",
    "notification",
    "allergy_added",
    "allergy_removed",
)


class TimelineEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event. ``kind`` says which source: ``prescription`` (``status``: the state it
    moved to, ``text``: why), ``request`` (``what``: RxChangeRequest or RxRenewalRequest,
    ``status``: the outbox's delivery state), ``answer`` (``what``: the transaction,
    ``status``: the response), ``note``, ``fill`` (``status``: the fill's new state;
    ``completed`` is the pick-up), ``consult`` (``status``: its state), ``notification``
    (``what``: its kind, ``status``: delivery status, ``channel``), ``allergy_added``,
    ``allergy_removed``."""

    at: Timestamp
    kind: Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(KINDS)})]
    key: Annotated[str, msgspec.Meta(description="the event's source row, unique")]
    prescription_id: uuid.UUID | None
    drug_description: str | None
    what: str | None
    status: str | None
    text: str | None
    actor: str | None
    channel: str | None


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TimelineEvent]
    #: pass as ``after`` for the next (older) page; None: the last page
    next: str | None


_NULL_TEXT = cast(null(), String)


def _branch(
    kind: str,
    at: ColumnExpressionArgument[Any],
    row_id: ColumnExpressionArgument[Any],
    *,
    prescription_id: ColumnExpressionArgument[Any] | None = None,
    drug: ColumnExpressionArgument[Any] | None = None,
    what: ColumnExpressionArgument[Any] | None = None,
    status: ColumnExpressionArgument[Any] | None = None,
    text: ColumnExpressionArgument[Any] | None = None,
    actor: ColumnExpressionArgument[Any] | None = None,
    channel: ColumnExpressionArgument[Any] | None = None,
) -> Select[*tuple[Any, ...]]:
    return select(
        type_coerce(at, UTCDateTime).label("at"),
        literal(kind, String).label("kind"),
        (literal(f"{kind}:", String) + cast(row_id, String)).label("key"),
        cast(prescription_id if prescription_id is not None else null(), String).label(
            "prescription_id"
        ),
        cast(drug, String).label("drug") if drug is not None else _NULL_TEXT.label("drug"),
        cast(what, String).label("what") if what is not None else _NULL_TEXT.label("what"),
        cast(status, String).label("status") if status is not None else _NULL_TEXT.label("status"),
        cast(text, String).label("text") if text is not None else _NULL_TEXT.label("text"),
        cast(actor, String).label("actor") if actor is not None else _NULL_TEXT.label("actor"),
        cast(channel, String).label("channel")
        if channel is not None
        else _NULL_TEXT.label("channel"),
    )


def _of_prescription(
    kind: str,
    at: ColumnExpressionArgument[Any],
    row_id: ColumnExpressionArgument[Any],
    link: ColumnExpressionArgument[Any],
    scope: ColumnElement[bool],
    *,
    through: tuple[Any, ColumnExpressionArgument[bool]] | None = None,
    **columns: ColumnExpressionArgument[Any],
) -> Select[*tuple[Any, ...]]:
    """A branch of a prescription's events: with its prescription and drug, joined on
    ``link`` (after ``through``, the table between, for a fill's), only the prescriptions
    ``scope`` allows."""
    branch = _branch(
        kind, at, row_id, prescription_id=Prescription.id, drug=Prescription.drug_description,
        **columns,
    )  # fmt: skip
    if through is not None:
        branch = branch.join(*through)
    return branch.join(Prescription, Prescription.id == link).where(scope)


@functools.cache
def _statement(paged: bool) -> Select[*tuple[Any, ...]]:
    """The statement, built once (building it costs more than running it): parameters
    ``patient``, ``pharmacy``, ``limit`` and, ``paged``, ``after_at`` and ``after_key``. Each
    branch is cut to the page before the union (its own top ``limit`` after the cursor)."""
    patient_id = bindparam("patient", type_=Uuid)
    pharmacy_id = bindparam("pharmacy", type_=Uuid)

    def mine(table: Any) -> ColumnElement[bool]:
        """``table``'s rows of the patient in the pharmacy."""
        return (table.patient_id == patient_id) & (table.pharmacy_id == pharmacy_id)

    rx = mine(Prescription)
    author = aliased(User)
    adder = aliased(User)
    remover = aliased(User)
    branches = [
        _of_prescription(
            "prescription",
            PrescriptionTransition.at,
            PrescriptionTransition.id,
            PrescriptionTransition.prescription_id,
            rx,
            status=PrescriptionTransition.to_state,
            text=PrescriptionTransition.reason,
            actor=PrescriptionTransition.actor,
        ),
        _of_prescription(
            "request",
            ClarificationRequest.created_at,
            ClarificationRequest.id,
            ClarificationRequest.prescription_id,
            rx,
            what=ClarificationRequest.message_type,
            status=OutboundMessage.state,
            text=ClarificationRequest.text,
            actor=author.username,
        )
        .outerjoin(OutboundMessage, OutboundMessage.id == ClarificationRequest.outbound_message_id)
        .outerjoin(author, author.id == ClarificationRequest.requested_by),
        _of_prescription(
            "answer",
            PrescriberAnswer.received_at,
            PrescriberAnswer.id,
            PrescriberAnswer.prescription_id,
            rx,
            what=PrescriberAnswer.transaction,
            status=PrescriberAnswer.response,
            text=PrescriberAnswer.text,
        ),
        _of_prescription(
            "note",
            PrescriptionNote.created_at,
            PrescriptionNote.id,
            PrescriptionNote.prescription_id,
            rx,
            text=PrescriptionNote.text,
            actor=author.username,
        ).outerjoin(author, author.id == PrescriptionNote.author_id),
        _of_prescription(
            "fill",
            FillTransition.at,
            FillTransition.id,
            Fill.prescription_id,
            rx,
            through=(Fill, Fill.id == FillTransition.fill_id),
            what=cast(Fill.number, String),
            status=FillTransition.to_state,
            text=FillTransition.reason,
            actor=FillTransition.actor,
        ),
        _branch(
            "consult",
            ConsultRow.created_at,
            ConsultRow.id,
            prescription_id=ConsultRow.prescription_id,
            status=ConsultRow.state,
            actor=author.username,
        )
        .outerjoin(author, author.id == ConsultRow.pharmacist_id)
        .where(mine(ConsultRow)),
        _branch(
            "notification",
            Notification.created_at,
            Notification.id,
            what=Notification.kind,
            status=Notification.state,
            text=Notification.provider_status,
            channel=Notification.channel,
        ).where(mine(Notification)),
        _branch(
            "allergy_added",
            PatientAllergy.added_at,
            PatientAllergy.id,
            what=PatientAllergy.code_system,
            status=PatientAllergy.severity,
            text=PatientAllergy.text,
            actor=adder.username,
        )
        .outerjoin(adder, adder.id == PatientAllergy.added_by)
        .where(mine(PatientAllergy)),
        _branch(
            "allergy_removed",
            PatientAllergy.removed_at,
            PatientAllergy.id,
            what=PatientAllergy.code_system,
            status=PatientAllergy.severity,
            text=PatientAllergy.text,
            actor=remover.username,
        )
        .outerjoin(remover, remover.id == PatientAllergy.removed_by)
        .where(mine(PatientAllergy), PatientAllergy.removed_at.is_not(None)),
    ]
    limit = bindparam("limit", type_=Integer)
    cut = [select(_page(branch, paged, limit).subquery()) for branch in branches]
    union = cut[0].union_all(*cut[1:]).subquery("events")
    return select(union).order_by(union.c.at.desc(), union.c.key.desc()).limit(limit)


def _page(
    branch: Select[*tuple[Any, ...]], paged: bool, limit: BindParameter[int]
) -> Select[*tuple[Any, ...]]:
    at, key = branch.selected_columns.at, branch.selected_columns.key
    if paged:
        after_at = bindparam("after_at", type_=UTCDateTime)
        after_key = bindparam("after_key", type_=String)
        branch = branch.where(or_(at < after_at, and_(at == after_at, key < after_key)))
    return branch.order_by(at.desc(), key.desc()).limit(limit)


async def events(
    session: AsyncSession,
    pharmacy_id: uuid.UUID,
    patient_id: uuid.UUID,
    after: tuple[dt.datetime, str] | None = None,
    limit: int = PAGE,
) -> list[TimelineEvent]:
    """One page of the patient's timeline, newest first (the caller checked the profile is
    the pharmacy's)."""
    params: dict[str, Any] = {"patient": patient_id, "pharmacy": pharmacy_id, "limit": limit}
    if after is not None:
        params["after_at"], params["after_key"] = after
    rows = await session.execute(_statement(after is not None), params)
    return [
        TimelineEvent(
            at=row.at.isoformat(),
            kind=row.kind,
            key=row.key,
            prescription_id=uuid.UUID(row.prescription_id) if row.prescription_id else None,
            drug_description=row.drug,
            what=row.what,
            status=row.status,
            text=row.text,
            actor=row.actor,
            channel=row.channel,
        )
        for row in rows
    ]


def cursor(event: TimelineEvent) -> str:
    raw = f"{event.at}|{event.key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(request: web.Request) -> tuple[dt.datetime, str] | None:
    raw = request.query.get("after")
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, key = text.split("|", 1)
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None or key.split(":", 1)[0] not in KINDS:
            raise ValueError
        return moment, key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("after is not a cursor this API gave.") from None


@operation(
    Operation(
        operation_id="getPatientTimeline",
        summary="A patient's timeline: prescription events, requests and answers, notes, fills, "
        "consults, notifications with their delivery status, allergy entries",
        description="Newest first; keyset pagination with after (the previous page's next).",
        scope=SCOPE,
        parameters=[
            path("id", "the patient profile"),
            query("after", {"type": "string"}, "the cursor of the previous page"),
            query("limit", {"type": "integer", "minimum": 0, "maximum": PAGE_MAX}, "page size"),
        ],
        response=Timeline,
        errors=("400", "401", "403", "404"),
    )
)
async def get_timeline(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/timeline``."""
    who = await caller(request, SCOPE)
    patient_id = path_uuid(request, "patient")
    limit = query_int(request, "limit", PAGE, PAGE_MAX)
    after = _after(request)
    event = audit.Event("patient.timeline.read", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await session.scalar(
            select(PatientProfile.id).where(
                PatientProfile.id == patient_id, PatientProfile.pharmacy_id == who.pharmacy_id
            )
        )
        await audit.found(session, who.actor, event, found, NotFound("No such patient."))
        items = await events(session, who.pharmacy_id, patient_id, after, limit) if limit else []
        await audit.add(session, who.actor, replace(event, detail={"count": len(items)}))
    following = cursor(items[-1]) if items and len(items) == limit else None
    return respond(Timeline(items=items, next=following))


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/api/v1/patients/{id}/timeline", get_timeline)
