"""Prescription reads: the queue and one prescription. Every caller sees only its own
pharmacy; every read is audited (a miss too: probing for IDs leaves a trace)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from eprescribe import prescriptions as rules
from eprescribe.checks import Severity
from eprescribe.ncpdp import (
    DENIAL_REASONS,
    DoNotFill,
    MedicationPrescribed,
    OrderDetails,
    Patient,
    Prescriber,
    from_json,
    to_json,
)
from eprescribe.workflow import State

from .. import audit
from ..auth.models import User
from ..callers import caller
from ..db import DATABASE
from ..db.models import utcnow
from ..dispensing.models import Fill
from ..errors import BadRequest, NotFound
from ..http import keyset_cursor, path_uuid, query_cursor, query_int, respond
from ..openapi import Operation, Timestamp, operation, path, query
from ..outbox import store as outbox
from ..outbox.models import OutboundMessage
from ..outbox.views import AnsweredView, OutboundView, outbound_view
from . import revisions
from .archive import ControlledArchive
from .models import (
    ClarificationRequest,
    Finding,
    PatientPicture,
    PrescriberAnswer,
    Prescription,
    PrescriptionNote,
    PrescriptionTransition,
)
from .store import open_renewals, renewal_facts

SCOPE = "rx:read"
#: the verification actions (server.prescriptions.actions), linked from the queue in OpenAPI
ACTION_NAMES = ("claim", "release", "approve", "reject", "clarify", "request_renewal", "notes")
MAX_LIMIT = 200


def action_operation(action: str) -> str:
    """An action's OpenAPI operationId: ``claimPrescription``, ``requestRenewalPrescription``."""
    first, *rest = action.split("_")
    return first + "".join(word.capitalize() for word in rest) + "Prescription"


STATES = frozenset(s.value for s in State)
#: the evidence field of a finding that rests on a pending prescription (eprescribe.checks)
PENDING_EVIDENCE = "pending_prescription_id"


def _flag(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false.")
    return raw == "true"


_BOOL = {"type": "string", "enum": ["true", "false"]}


class ClaimView(msgspec.Struct, frozen=True, kw_only=True):
    """Who works on a prescription (visible to colleagues), while the claim lasts."""

    user_id: str
    username: str | None
    until: Timestamp


class PatientName(msgspec.Struct, frozen=True, kw_only=True):
    last: str | None
    first: str | None
    date_of_birth: Annotated[str | None, msgspec.Meta(extra_json_schema={"format": "date"})]


class FindingCounts(msgspec.Struct, frozen=True, kw_only=True):
    """The findings at a glance, for the queue."""

    hard_stops: int
    warnings: int
    on_pending: Annotated[
        int,
        msgspec.Meta(
            description="findings that rest on another of the patient's open prescriptions "
            "(pending, not yet verified): the pharmacist sees the pair from the list"
        ),
    ]
    stale: Annotated[
        bool,
        msgspec.Meta(
            description="the patient's picture changed since the checks ran: they are "
            "running again, and approval waits for them"
        ),
    ]


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """A prescription as the queue lists it."""

    id: uuid.UUID
    state: State
    message_id: str
    received_at: Timestamp
    drug_description: str
    dea_schedule: str | None
    urgent: bool
    claim: ClaimView | None
    patient: PatientName
    findings: FindingCounts
    do_not_fill: Annotated[
        DoNotFill | None,
        msgspec.Meta(
            description="the prescriber's DoNotFill: Y do not fill, H hold (fill when the "
            "patient asks), E do not fill"
        ),
    ] = None
    test: Annotated[
        bool,
        msgspec.Meta(description="from a SCRIPT test message (Header/TestMessage): never filled"),
    ] = False


class Queue(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Summary]
    limit: int
    offset: int
    next_cursor: Annotated[
        str | None,
        msgspec.Meta(
            description="pass as cursor for the next page (null: this page is the last); "
            "paging by cursor costs a page whatever the history, and rows that change "
            "meanwhile are neither skipped nor listed twice"
        ),
    ] = None


@operation(
    Operation(
        operation_id="listPrescriptions",
        summary="The verification queue: urgent (STAT) first, then oldest first",
        scope=SCOPE,
        parameters=[
            query("state", {"type": "string", "enum": sorted(STATES)}, "only this state"),
            query("message_id", {"type": "string", "maxLength": 35}, "the SCRIPT MessageID"),
            query("urgent", _BOOL, "only urgent (or only routine) orders"),
            query("controlled", _BOOL, "only controlled substances (or none)"),
            query("hard_stops", _BOOL, "only orders with (or without) a hard stop"),
            query(
                "test",
                _BOOL,
                "test messages (Header/TestMessage) instead of prescriptions; they are never "
                "in the queue (default false)",
            ),
            query("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}, "page size"),
            query(
                "cursor",
                {"type": "string", "maxLength": 200},
                "the next_cursor of the previous page (keyset paging: a page costs the same "
                "however long the history); not with offset",
            ),
            query(
                "offset",
                {"type": "integer", "minimum": 0},
                "page start, counted (deprecated: reads every row before it; use cursor)",
            ),
        ],
        response=Queue,
        links={
            f"{target}First": (target, {"id": "$response.body#/items/0/id"})
            for target in ("getPrescription", *(action_operation(a) for a in ACTION_NAMES))
        },
    )
)
async def list_prescriptions(request: web.Request) -> web.Response:
    """``GET /api/v1/prescriptions``: the queue, urgent (STAT) first, then oldest first.

    Filters: ``state``, ``message_id``, ``urgent``, ``controlled`` (any DEA schedule),
    ``hard_stops`` (has a hard-stop finding), ``test`` (``true``: the test messages kept,
    which are never in the queue); paging with ``limit`` and ``cursor`` (keyset: the urgent
    rows, then the others, each read from the index of the queue's order from where the
    previous page ended, so a page reads its own rows whatever the history), or ``offset``.
    """
    who = await caller(request, SCOPE)
    actor = who.actor
    test = _flag(request, "test") or False
    query = select(Prescription).where(
        Prescription.pharmacy_id == who.pharmacy_id, Prescription.test.is_(test)
    )
    urgent = _flag(request, "urgent")
    if urgent is not None:
        query = query.where(Prescription.urgent.is_(urgent))
    controlled = _flag(request, "controlled")
    if controlled is not None:
        query = query.where(
            Prescription.dea_schedule.is_not(None)
            if controlled
            else Prescription.dea_schedule.is_(None)
        )
    hard_stops = _flag(request, "hard_stops")
    if hard_stops is not None:
        blocked = (
            select(Finding.id)
            .where(Finding.prescription_id == Prescription.id, Finding.severity == "hard_stop")
            .exists()
        )
        query = query.where(blocked if hard_stops else ~blocked)
    state = request.query.get("state")
    if state is not None:
        if state not in STATES:
            raise BadRequest(f"state must be one of: {', '.join(sorted(STATES))}.")
        query = query.where(Prescription.state == state)
    message_id = request.query.get("message_id")
    if message_id is not None:
        if not 1 <= len(message_id) <= 35:
            raise BadRequest("message_id must be 1 to 35 characters.")
        query = query.where(Prescription.message_id == message_id)
    limit = query_int(request, "limit", 50, MAX_LIMIT)
    offset = query_int(request, "offset", 0, 1_000_000)
    after = query_cursor(request)
    if after is not None and (offset or after[0] is None):
        raise BadRequest("cursor is not a cursor of this list, or came with offset.")
    db = request.app[DATABASE]
    async with db.transaction() as session:
        if offset:
            ordered = query.order_by(
                Prescription.urgent.desc(), Prescription.received_at, Prescription.id
            )
            rows = list(await session.scalars(ordered.limit(limit).offset(offset)))
        else:
            rows = await _keyset_page(session, query, urgent, after, limit)
        claimants = await usernames(session, {r.claimed_by for r in rows if r.claimed_by})
        counts = await finding_counts(session, rows)
        await audit.add(
            session,
            actor,
            audit.Event(
                "prescription.list",
                "prescription",
                None,
                detail={"count": len(rows), "ids": [str(r.id) for r in rows]},
            ),
        )
    now = utcnow()
    items = [summary(r, claimants, now, counts[r.id]) for r in rows]
    last = rows[-1] if rows and len(rows) == limit else None
    following = keyset_cursor(last.urgent, last.received_at, last.id) if last else None
    return respond(Queue(items=items, limit=limit, offset=offset, next_cursor=following))


async def _keyset_page(
    session: AsyncSession,
    query: Select[Prescription],
    urgent: bool | None,
    after: tuple[bool | None, dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Prescription]:
    """A page of the queue's order (urgent first, then oldest first) after ``after``: the
    urgent rows, then the others, each an index range from where the previous page ended
    (``ix_prescriptions_queue_state``, ``ix_prescriptions_queue``)."""
    rows: list[Prescription] = []
    for part in (True, False):
        if urgent is not None and part is not urgent:
            continue
        if after is not None and after[0] is False and part:
            continue  # the urgent rows were all listed before
        wanted = limit - len(rows)
        if wanted <= 0:
            break
        segment = query.where(Prescription.urgent.is_(part))
        if after is not None and after[0] is part:
            segment = segment.where(
                tuple_(Prescription.received_at, Prescription.id)
                > tuple_(
                    literal(after[1], Prescription.received_at.type),
                    literal(after[2], Prescription.id.type),
                )
            )
        ordered = segment.order_by(Prescription.received_at, Prescription.id).limit(wanted)
        rows.extend(await session.scalars(ordered))
    return rows


class Revision(msgspec.Struct, frozen=True, kw_only=True):
    revision: str


class PrescriptionRevision(msgspec.Struct, frozen=True, kw_only=True):
    revision: str
    state: State


@operation(
    Operation(
        operation_id="getQueueRevision",
        summary="A token that changes whenever the pharmacy's queue does",
        description="Cheap to poll (no patient data, so not audited; the pharmacy's revision "
        "counter and its running claims, the same cost however long its history): list again "
        "when it changes. Opaque: compare it with the last one, never order it.",
        scope=SCOPE,
        response=Revision,
        errors=("401", "403"),
    )
)
async def queue_revision(request: web.Request) -> web.Response:
    """``GET /api/v1/queue/revision``: the pharmacy's queue revision (counted up in the unit of
    work of every change to what its queues show, :mod:`.revisions`) and how many claims still
    run (a claim running out changes that figure). One row read and the running claims'
    index range, however long the pharmacy's history."""
    who = await caller(request, SCOPE)
    now = utcnow()
    async with request.app[DATABASE].transaction() as session:
        counted = await revisions.current(session, who.pharmacy_id)
        claims = await session.scalar(
            select(func.count()).where(
                Prescription.pharmacy_id == who.pharmacy_id,
                Prescription.claimed_until.is_not(None),
                Prescription.claimed_until > now,
            )
        )
    return respond(Revision(revision=f"{counted}.{claims}"))


async def usernames(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {row.id: row.username for row in rows}


def _claim(rx: Prescription, names: dict[uuid.UUID, str], now: dt.datetime) -> ClaimView | None:
    if rx.claimed_by is None or rx.claimed_until is None or rx.claimed_until <= now:
        return None
    return ClaimView(
        user_id=str(rx.claimed_by),
        username=names.get(rx.claimed_by),
        until=rx.claimed_until.isoformat(),
    )


class FindingView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    severity: Severity
    message: str
    evidence: dict[str, Any]


class NoteView(msgspec.Struct, frozen=True, kw_only=True):
    author: str | None
    text: str
    at: Timestamp


class HistoryStep(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    """One transition: who moved the prescription, when and why."""

    from_: State | None
    to: State
    actor: str
    actor_name: Annotated[str | None, msgspec.Meta(description="the user's name, for a user")]
    reason: str
    at: Timestamp


_AS_RECEIVED = "as received: the SCRIPT message's fields, snake_case"


class EpcsView(msgspec.Struct, frozen=True, kw_only=True):
    """The controlled-substance record as the hub signed and archived it on receipt
    (21 CFR 1311.210; docs/epcs.md)."""

    verified_on_receipt: Annotated[
        bool,
        msgspec.Meta(description="the practitioner's digital signature arrived and verified"),
    ]
    practitioner_signature: Annotated[
        Literal["verified", "failed", "indicator", "absent"],
        msgspec.Meta(
            description="what came with the message: a signature that verified or failed, "
            "only the DigitalSignatureIndicator (signed by an intermediary), or nothing"
        ),
    ]
    verification: Annotated[
        str | None,
        msgspec.Meta(
            description="verified, malformed, digest_mismatch, bad_signature, "
            "untrusted_chain, expired, revoked or crl_unavailable; null without a signature"
        ),
    ]
    reason: str | None
    certificate_subject: str | None
    certificate_issuer: str | None
    message_sha256: Annotated[str, msgspec.Meta(description="of the original message bytes")]
    archived_at: Timestamp
    archive_key_id: Annotated[
        str, msgspec.Meta(description="SHA-256 of the hub's archive key (SubjectPublicKeyInfo)")
    ]
    archive_signature: Annotated[
        str, msgspec.Meta(description="the hub's ECDSA P-256 signature of the record, base64")
    ]


def epcs_view(row: ControlledArchive | None) -> EpcsView | None:
    if row is None:
        return None
    found = dict(row.verification or {})
    return EpcsView(
        verified_on_receipt=row.verified_on_receipt,
        practitioner_signature=row.record["practitioner_signature"],
        verification=found.get("outcome"),
        reason=found.get("reason"),
        certificate_subject=found.get("certificate_subject"),
        certificate_issuer=found.get("certificate_issuer"),
        message_sha256=row.record["sha256"],
        archived_at=row.archived_at.isoformat(),
        archive_key_id=row.key_id,
        archive_signature=base64.b64encode(row.signature).decode(),
    )


class LinkView(msgspec.Struct, frozen=True, kw_only=True):
    """Another prescription this one is linked to by a prescriber's answer."""

    id: uuid.UUID
    kind: Annotated[
        Literal["change", "renewal"],
        msgspec.Meta(description="an approved change (replaces) or an approved renewal (renews)"),
    ]
    state: State


class ReasonView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    text: Annotated[str | None, msgspec.Meta(description="the code in words, when known")]


class AnswerView(msgspec.Struct, frozen=True, kw_only=True):
    """A prescriber's answer (RxChangeResponse, RxRenewalResponse) to the hub's request."""

    id: uuid.UUID
    transaction: Annotated[str, msgspec.Meta(description="RxChangeResponse or RxRenewalResponse")]
    response: Annotated[
        str,
        msgspec.Meta(description="Approved, ApprovedWithChanges, Validated, Replace or Denied"),
    ]
    reasons: list[ReasonView]
    reference_number: Annotated[
        str | None, msgspec.Meta(description="a Validated answer's prior authorization number")
    ]
    text: Annotated[str | None, msgspec.Meta(description="the prescriber's note or denial reason")]
    request_message_id: Annotated[str, msgspec.Meta(description="the MessageID of the request")]
    new_prescription_id: Annotated[
        uuid.UUID | None, msgspec.Meta(description="the prescription the answer made")
    ]
    at: Timestamp


class RequestView(msgspec.Struct, frozen=True, kw_only=True):
    """A request the pharmacy sent the prescriber about this prescription: the prescriber's
    answer relates to its ``message_id``."""

    message_type: Annotated[str, msgspec.Meta(description="RxChangeRequest or RxRenewalRequest")]
    request_code: Annotated[
        str | None,
        msgspec.Meta(description="an RxChangeRequest's MessageRequestCode (G, T, P, S, D, OS, U)"),
    ]
    reason_code: Annotated[str, msgspec.Meta(description="the reason code; renewal for a renewal")]
    text: str
    detail: Annotated[
        dict[str, Any],
        msgspec.Meta(description="sub_codes and medications proposed; refills asked for"),
    ]
    message_id: Annotated[str | None, msgspec.Meta(description="the request's MessageID")]
    requested_by: str | None
    at: Timestamp


class RenewalView(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a renewal may be requested now (request_renewal), and why not."""

    allowed: bool
    code: Annotated[
        str | None,
        msgspec.Meta(description="why not: wrong_state, renewal_prohibited or renewal_pending"),
    ]
    reason: str | None
    refills: Annotated[int, msgspec.Meta(description="the NewRx's NumberOfRefills")]
    confirm_refills_used: Annotated[
        bool,
        msgspec.Meta(
            description="it was written with refills: the pharmacist states they are used up "
            "(refills_used) to ask"
        ),
    ]


def renewal_view(rx: Prescription, open_since: dt.datetime | None) -> RenewalView:
    value = rules.Prescription(
        rx.id,
        rx.pharmacy_id,
        State(rx.state),
        (),
        **renewal_facts(rx),
        renewal_open_since=open_since,
    )
    refused = rules.renewal_refusal(value)
    return RenewalView(
        allowed=refused is None,
        code=refused.code if refused else None,
        reason=refused.detail if refused else None,
        refills=value.refills,
        confirm_refills_used=value.refills > 0,
    )


def request_view(row: ClarificationRequest, names: dict[uuid.UUID, str]) -> RequestView:
    return RequestView(
        message_type=row.message_type,
        request_code=row.request_code,
        reason_code=row.reason_code,
        text=row.text,
        detail=dict(row.detail or {}),
        message_id=row.message_id,
        requested_by=names.get(row.requested_by),
        at=row.created_at.isoformat(),
    )


class FillSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One fill of the prescription (the whole fill: ``GET /api/v1/fills/{id}``)."""

    id: uuid.UUID
    number: int
    state: str
    quantity_owed: str
    quantity: str | None
    ndc11: str | None
    started_at: Timestamp
    ended_at: Timestamp | None


class Detail(msgspec.Struct, frozen=True, kw_only=True):
    """The whole prescription with its history."""

    id: uuid.UUID
    state: State
    urgent: bool
    test: Annotated[
        bool,
        msgspec.Meta(
            description="from a SCRIPT test message (Header/TestMessage): kept as received, "
            "never checked, never in the queue, never filled"
        ),
    ]
    claim: ClaimView | None
    notes: list[NoteView]
    message_id: str
    prescriber_order_number: str | None
    received_at: Timestamp
    written_date: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]
    patient: Annotated[dict[str, Any], msgspec.Meta(description=f"the patient {_AS_RECEIVED}")]
    patient_id: Annotated[
        str | None, msgspec.Meta(description="the patient's profile, once the checks matched one")
    ]
    prescriber: Annotated[
        dict[str, Any], msgspec.Meta(description=f"the prescriber {_AS_RECEIVED}")
    ]
    medication: Annotated[
        dict[str, Any], msgspec.Meta(description=f"the medication prescribed {_AS_RECEIVED}")
    ]
    details: Annotated[
        dict[str, Any],
        msgspec.Meta(description="sent time, sender, signature, allergies, pharmacy, flags"),
    ]
    findings: list[FindingView]
    findings_basis: Annotated[
        int | None,
        msgspec.Meta(
            description="the version of the patient's picture the findings rest on; "
            "approve sends it back, so a decision never rests on findings it did not see"
        ),
    ]
    findings_stale: Annotated[
        bool,
        msgspec.Meta(
            description="the patient's picture changed since: the checks are running again "
            "and approval is refused until they have"
        ),
    ]
    history: list[HistoryStep]
    outbound: Annotated[
        list[OutboundView],
        msgspec.Meta(description="the SCRIPT messages the hub sends about it, and their delivery"),
    ]
    requests: Annotated[
        list[RequestView],
        msgspec.Meta(description="what the pharmacy asked the prescriber, oldest first"),
    ]
    renewal: RenewalView
    epcs: Annotated[
        EpcsView | None,
        msgspec.Meta(
            description="the signed archive of a controlled substance (or of a prescription "
            "that came with a practitioner's signature), once the checks have started"
        ),
    ] = None
    rx_number: Annotated[
        str | None,
        msgspec.Meta(description="the pharmacy's Rx number, given at the first fill"),
    ] = None
    fills: Annotated[
        list[FillSummary], msgspec.Meta(description="its fills, oldest first (docs/dispensing.md)")
    ] = msgspec.field(default_factory=list)
    replaces: Annotated[
        LinkView | None,
        msgspec.Meta(description="the prescription this one replaces (a change) or renews"),
    ] = None
    replaced_by: Annotated[
        list[LinkView],
        msgspec.Meta(description="the prescriptions that replace or renew this one"),
    ] = msgspec.field(default_factory=list)
    answers: Annotated[
        list[AnswerView],
        msgspec.Meta(description="the prescriber's answers to the hub's requests about it"),
    ] = msgspec.field(default_factory=list)
    prior_authorization: Annotated[
        str | None,
        msgspec.Meta(description="a prior authorization number the prescriber confirmed"),
    ] = None


@operation(
    Operation(
        operation_id="getPrescriptionRevision",
        summary="A token that changes whenever the prescription does",
        description="Cheap to poll while a prescription is shown (its state, claim and the "
        "prescriptions that replace it, no patient data, so a hit is not audited; a miss is): "
        "read the prescription again when it changes, e.g. when the prescriber cancels it.",
        scope=SCOPE,
        parameters=[path("id", "the prescription")],
        response=PrescriptionRevision,
        errors=("401", "403", "404"),
    )
)
async def prescription_revision(request: web.Request) -> web.Response:
    """``GET /api/v1/prescriptions/{id}/revision``: its state, when its row last changed, its
    claim, and how many prescriptions replace or renew it and answers it has had."""
    who = await caller(request, SCOPE)
    rx_id = path_uuid(request, "prescription")
    event = audit.Event("prescription.read", "prescription", str(rx_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        found = (
            await session.execute(
                select(
                    Prescription.state,
                    Prescription.updated_at,
                    Prescription.claimed_by,
                    Prescription.claimed_until,
                    select(func.count())
                    .where(Prescription.replaces_prescription_id == rx_id)
                    .scalar_subquery(),
                    select(func.count())
                    .where(PrescriberAnswer.prescription_id == rx_id)
                    .scalar_subquery(),
                ).where(Prescription.id == rx_id, Prescription.pharmacy_id == who.pharmacy_id)
            )
        ).first()
        row = await audit.found(session, who.actor, event, found, NotFound("No such prescription."))
    text = ";".join("" if value is None else str(value) for value in row)
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return respond(PrescriptionRevision(revision=digest, state=State(row.state)))


@operation(
    Operation(
        operation_id="getPrescription",
        summary="One prescription: patient, prescriber, medication, findings, notes, history",
        scope=SCOPE,
        parameters=[path("id", "the prescription")],
        response=Detail,
        errors=("401", "403", "404"),
    )
)
async def get_prescription(request: web.Request) -> web.Response:
    """``GET /api/v1/prescriptions/{id}``: the whole prescription with its history."""
    who = await caller(request, SCOPE)
    actor = who.actor
    rx_id = path_uuid(request, "prescription")
    event = audit.Event("prescription.read", "prescription", str(rx_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await session.scalar(
            select(Prescription)
            .where(Prescription.id == rx_id, Prescription.pharmacy_id == who.pharmacy_id)
            .options(selectinload(Prescription.transitions), selectinload(Prescription.findings))
        )
        rx = await audit.found(session, actor, event, found, NotFound("No such prescription."))
        notes = list(
            await session.scalars(
                select(PrescriptionNote)
                .where(PrescriptionNote.prescription_id == rx_id)
                .order_by(PrescriptionNote.id)
            )
        )
        versions = await pictures(session, [rx])
        outbound = (await session.run_sync(lambda s: outbox.of_prescriptions(s, [rx_id])))[rx_id]
        archived = await session.scalar(
            select(ControlledArchive).where(ControlledArchive.prescription_id == rx_id)
        )
        links = await linked(session, rx)
        fills = await fill_summaries(session, rx_id)
        opened = await session.run_sync(lambda s: open_renewals(s, [rx_id]))
        open_since = opened.get(rx_id)
        requests = list(
            await session.scalars(
                select(ClarificationRequest)
                .where(ClarificationRequest.prescription_id == rx_id)
                .order_by(ClarificationRequest.created_at, ClarificationRequest.id)
            )
        )
        names = await usernames(
            session,
            {n.author_id for n in notes}
            | {r.requested_by for r in requests}
            | ({rx.claimed_by} if rx.claimed_by else set())
            | _acting_users(rx.transitions),
        )
        await audit.add(session, actor, event)
    detail = _detail(
        rx, notes, names, utcnow(), stale(rx, versions), outbound, requests, open_since
    )
    answered: dict[uuid.UUID, PrescriberAnswer] = links.pop("answered")
    views = [_with_answer(view, answered.get(view.id)) for view in detail.outbound]
    return respond(
        msgspec.structs.replace(
            detail,
            epcs=epcs_view(archived),
            outbound=views,
            rx_number=rx.rx_number,
            fills=fills,
            **links,
        )
    )


async def fill_summaries(session: AsyncSession, rx_id: uuid.UUID) -> list[FillSummary]:
    rows = await session.scalars(
        select(Fill).where(Fill.prescription_id == rx_id).order_by(Fill.started_at, Fill.id)
    )
    return [
        FillSummary(
            id=f.id,
            number=f.number,
            state=f.state,
            quantity_owed=f.quantity_owed,
            quantity=f.quantity,
            ndc11=f.ndc11,
            started_at=f.started_at.isoformat(),
            ended_at=f.ended_at.isoformat() if f.ended_at else None,
        )
        for f in rows
    ]


def _with_answer(view: OutboundView, answer: PrescriberAnswer | None) -> OutboundView:
    if answer is None:
        return view
    answered = AnsweredView(response=answer.response, at=answer.received_at.isoformat())
    return msgspec.structs.replace(view, answer=answered)


async def linked(session: AsyncSession, rx: Prescription) -> dict[str, Any]:
    """What a prescriber's answers link to ``rx``: the prescription it replaces or renews,
    those that replace or renew it, the answers themselves (each also shown with the
    request it answers) and a confirmed prior authorization."""
    replaces = None
    if rx.replaces_prescription_id is not None:
        state = await session.scalar(
            select(Prescription.state).where(Prescription.id == rx.replaces_prescription_id)
        )
        assert state is not None  # a foreign key
        replaces = LinkView(
            id=rx.replaces_prescription_id,
            kind="renewal" if rx.replacement == "renewal" else "change",
            state=State(state),
        )
    successors = await session.execute(
        select(Prescription.id, Prescription.replacement, Prescription.state)
        .where(Prescription.replaces_prescription_id == rx.id)
        .order_by(Prescription.received_at, Prescription.id)
    )
    rows = (
        await session.execute(
            select(PrescriberAnswer, OutboundMessage.message_id)
            .join(OutboundMessage, OutboundMessage.id == PrescriberAnswer.request_id)
            .where(PrescriberAnswer.prescription_id == rx.id)
            .order_by(PrescriberAnswer.received_at, PrescriberAnswer.id)
        )
    ).all()
    return {
        "replaces": replaces,
        "replaced_by": [
            LinkView(id=i, kind="renewal" if kind == "renewal" else "change", state=State(state))
            for i, kind, state in successors
        ],
        "answers": [_answer_view(answer, request) for answer, request in rows],
        "prior_authorization": rx.prior_authorization,
        "answered": {answer.request_id: answer for answer, _ in rows},
    }


def _answer_view(answer: PrescriberAnswer, request_message_id: str) -> AnswerView:
    codes = (answer.reason_codes or "").split()
    return AnswerView(
        id=answer.id,
        transaction=answer.transaction,
        response=answer.response,
        reasons=[ReasonView(code=code, text=DENIAL_REASONS.get(code)) for code in codes],
        reference_number=answer.reference_number,
        text=answer.text,
        request_message_id=request_message_id,
        new_prescription_id=answer.new_prescription_id,
        at=answer.received_at.isoformat(),
    )


def _user_of(actor: str) -> uuid.UUID | None:
    """The user of a history's actor (``user:<id>``), to show them by name."""
    kind, _, key = actor.partition(":")
    if kind != "user":
        return None
    try:
        return uuid.UUID(key)
    except ValueError:
        return None


def _acting_users(transitions: list[PrescriptionTransition]) -> set[uuid.UUID]:
    return {user for t in transitions if (user := _user_of(t.actor))}


def _actor_name(actor: str, names: dict[uuid.UUID, str]) -> str | None:
    user = _user_of(actor)
    return names.get(user) if user else None


async def finding_counts(
    session: AsyncSession, rows: list[Prescription]
) -> dict[uuid.UUID, FindingCounts]:
    """The findings of ``rows`` counted, and whether each rests on a stale picture."""
    tally = {r.id: {"hard_stop": 0, "warning": 0, "pending": 0} for r in rows}
    if rows:
        found = await session.execute(
            select(Finding.prescription_id, Finding.severity, Finding.evidence).where(
                Finding.prescription_id.in_(list(tally))
            )
        )
        for rx_id, severity, evidence in found:
            counts = tally[rx_id]
            if severity in counts:
                counts[severity] += 1
            if PENDING_EVIDENCE in evidence:
                counts["pending"] += 1
    versions = await pictures(session, rows)
    return {
        r.id: FindingCounts(
            hard_stops=tally[r.id]["hard_stop"],
            warnings=tally[r.id]["warning"],
            on_pending=tally[r.id]["pending"],
            stale=stale(r, versions),
        )
        for r in rows
    }


async def pictures(session: AsyncSession, rows: list[Prescription]) -> dict[uuid.UUID, int]:
    """The current picture versions of ``rows``' patients."""
    patients = sorted({r.patient_id for r in rows if r.patient_id})
    if not patients:
        return {}
    found = await session.execute(
        select(PatientPicture.patient_id, PatientPicture.version).where(
            PatientPicture.patient_id.in_(patients)
        )
    )
    versions: dict[uuid.UUID, int] = dict(found.all())
    return versions


def stale(rx: Prescription, versions: dict[uuid.UUID, int]) -> bool:
    """Its findings rest on an older picture of the patient than today's (as
    :attr:`eprescribe.prescriptions.Prescription.findings_stale` decides)."""
    return rx.patient_id is not None and rx.checked_basis != versions.get(rx.patient_id)


def summary(
    rx: Prescription, names: dict[uuid.UUID, str], now: dt.datetime, findings: FindingCounts
) -> Summary:
    return Summary(
        id=rx.id,
        state=State(rx.state),
        message_id=rx.message_id,
        received_at=rx.received_at.isoformat(),
        drug_description=rx.drug_description,
        dea_schedule=rx.dea_schedule,
        urgent=rx.urgent,
        claim=_claim(rx, names, now),
        patient=patient_name(from_json(Patient, rx.patient)),
        findings=findings,
        do_not_fill=_do_not_fill(rx.medication),
        test=rx.test,
    )


def _do_not_fill(medication: dict[str, Any]) -> DoNotFill | None:
    """The stored medication's DoNotFill, read without reading the whole value back (the
    column holds what :class:`MedicationPrescribed` wrote, checked when it was parsed)."""
    value = medication.get("do_not_fill")
    return value if value in ("Y", "H", "E") else None


def patient_name(patient: Patient) -> PatientName:
    name, born = patient.name, patient.date_of_birth
    return PatientName(
        last=name.last if name else None,
        first=name.first if name else None,
        date_of_birth=born.date.isoformat() if born else None,
    )


def _detail(
    rx: Prescription,
    notes: list[PrescriptionNote],
    names: dict[uuid.UUID, str],
    now: dt.datetime,
    findings_stale: bool,
    outbound: list[OutboundMessage],
    requests: list[ClarificationRequest],
    renewal_open_since: dt.datetime | None = None,
) -> Detail:
    """The response, from the stored values read back typed (so the API's shape follows the
    value objects, not whatever the columns hold)."""
    return Detail(
        id=rx.id,
        state=State(rx.state),
        urgent=rx.urgent,
        test=rx.test,
        claim=_claim(rx, names, now),
        notes=[
            NoteView(author=names.get(n.author_id), text=n.text, at=n.created_at.isoformat())
            for n in notes
        ],
        message_id=rx.message_id,
        prescriber_order_number=rx.prescriber_order_number,
        received_at=rx.received_at.isoformat(),
        written_date=rx.written_date.isoformat(),
        patient=to_json(from_json(Patient, rx.patient)),
        patient_id=str(rx.patient_id) if rx.patient_id else None,
        prescriber=to_json(from_json(Prescriber, rx.prescriber)),
        medication=to_json(from_json(MedicationPrescribed, rx.medication)),
        details=to_json(from_json(OrderDetails, rx.details)),
        findings=[
            FindingView(
                code=f.code, severity=Severity(f.severity), message=f.message, evidence=f.evidence
            )
            for f in rx.findings
        ],
        findings_basis=rx.checked_basis,
        findings_stale=findings_stale,
        history=[
            HistoryStep(
                from_=State(t.from_state) if t.from_state else None,
                to=State(t.to_state),
                actor=t.actor,
                actor_name=_actor_name(t.actor, names),
                reason=t.reason,
                at=t.at.isoformat(),
            )
            for t in rx.transitions
        ],
        outbound=[outbound_view(m) for m in outbound],
        requests=[request_view(r, names) for r in requests],
        renewal=renewal_view(rx, renewal_open_since),
    )
