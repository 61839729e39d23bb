"""Prescriptions in the database: the one writer of prescription state.

The values of :mod:`eprescribe.prescriptions` are stored as rows: the prescription's own row
(state, claim, patient link), its transitions, findings, notes and the questions queued for the
prescriber. Every write goes through :func:`save`, which writes what an
:class:`~eprescribe.prescriptions.Outcome` says and then the audit entries, always as the
unit of work's last statement (the audit chain head's lock is the last lock taken). The
intake's batched fast path (:mod:`.writer`) stores rows built here by :func:`intake_record`.

The functions take a blocking :class:`~sqlalchemy.orm.Session`: the check worker calls them
directly, the hub's handlers through ``AsyncSession.run_sync`` (:class:`PrescriptionStore`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from aiohttp import web
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe import prescriptions as rules
from eprescribe.checks import Finding, PatientMatch, Severity
from eprescribe.ncpdp import (
    DigitalSignature,
    MedicationPrescribed,
    Message,
    NewRx,
    OrderDetails,
    Patient,
    Prescriber,
    from_json,
)
from eprescribe.verification import Claim, VerificationError
from eprescribe.workflow import ACCEPTED, PENDING, REVIEWABLE, State, Transition

from .. import audit
from ..admin.models import Pharmacy
from ..db import Database, insert_ignoring_conflicts
from ..db.models import utcnow
from ..errors import Conflict, Forbidden, NotFound, Problem, Unprocessable
from ..notifications import Triggers
from ..outbox import Deliver
from ..outbox import store as outbox
from ..outbox.models import OutboundMessage
from . import outbound, revisions
from .models import (
    ClarificationRequest,
    InboundMessage,
    PatientPicture,
    PrescriberAnswer,
    PrescriptionNote,
    PrescriptionTransition,
)
from .models import Finding as FindingRow
from .models import Prescription as PrescriptionRow
from .writer import Duplicate, IntakeRecord

#: UrgencyIndicatorCode for an urgent (STAT) order: first in the pharmacist's queue
URGENT = "X"
#: refusals that are about the prescription's current state, not about the request
_CONFLICTS = frozenset(
    {"claimed_by_other", "claim_required", "wrong_state", "checked_again", "renewal_pending"}
)
#: the most prescriptions of one patient a change of their picture queues for checking again
#: at once; the rest follow (the worker's next pass, or the sweep), never a burst without end
RECHECK_MAX = 64


# -- reading ------------------------------------------------------------------------------


def load(
    session: Session,
    ids: Iterable[uuid.UUID],
    *,
    pharmacy_id: uuid.UUID | None = None,
    lock_pictures: bool = False,
    requests: bool = False,
) -> dict[uuid.UUID, rules.Prescription]:
    """The prescriptions of ``ids`` (of ``pharmacy_id`` only, when given), their rows locked
    in ID order (so concurrent units of work cannot deadlock). A value's history is loaded
    empty: the rules never read it to decide, and :func:`save` writes the steps a decision
    appends (the readers of a history, ``queue.py``, read the transitions themselves).
    ``lock_pictures``: lock their patients' pictures too (after the prescriptions, in ID
    order), so no change of a picture commits between a decision and the version it read.
    ``requests``: with the renewal requests still open (for the pharmacist's decisions)."""
    rows = _locked(session, ids, pharmacy_id)
    values = _values(session, rows, lock_pictures=lock_pictures)
    if not requests:
        return values
    opened = open_renewals(session, values)
    return {
        rx_id: dataclasses.replace(rx, renewal_open_since=opened.get(rx_id))
        for rx_id, rx in values.items()
    }


def open_renewals(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dt.datetime]:
    """When each of ``ids`` was first asked to be renewed, for those with a renewal request
    neither answered nor dead (one that could not be delivered may be asked again)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(ClarificationRequest.prescription_id, func.min(ClarificationRequest.created_at))
        .join(OutboundMessage, OutboundMessage.id == ClarificationRequest.outbound_message_id)
        .where(
            ClarificationRequest.prescription_id.in_(wanted),
            ClarificationRequest.message_type == "RxRenewalRequest",
            OutboundMessage.state != outbox.DEAD,
            ~select(PrescriberAnswer.id)
            .where(PrescriberAnswer.request_id == OutboundMessage.id)
            .exists(),
        )
        .group_by(ClarificationRequest.prescription_id)
    ).all()
    opened: dict[uuid.UUID, dt.datetime] = dict(rows)
    return opened


def _locked(
    session: Session, ids: Iterable[uuid.UUID], pharmacy_id: uuid.UUID | None = None
) -> list[PrescriptionRow]:
    query = select(PrescriptionRow).where(PrescriptionRow.id.in_(sorted(set(ids))))
    if pharmacy_id is not None:
        query = query.where(PrescriptionRow.pharmacy_id == pharmacy_id)
    return list(session.scalars(query.order_by(PrescriptionRow.id).with_for_update()))


def _values(
    session: Session, rows: list[PrescriptionRow], *, lock_pictures: bool = False
) -> dict[uuid.UUID, rules.Prescription]:
    """The values of locked ``rows``, with their findings and their patients' picture
    versions."""
    if not rows:
        return {}
    versions = picture_versions(
        session, {row.patient_id for row in rows if row.patient_id}, lock=lock_pictures
    )
    findings: dict[uuid.UUID, list[Finding]] = {row.id: [] for row in rows}
    for f in session.scalars(
        select(FindingRow)
        .where(FindingRow.prescription_id.in_(list(findings)))
        .order_by(FindingRow.prescription_id, FindingRow.id)
    ):
        findings[f.prescription_id].append(
            Finding(f.code, Severity(f.severity), f.message, f.evidence)
        )
    return {
        row.id: _value(
            row, tuple(findings[row.id]), versions.get(row.patient_id) if row.patient_id else None
        )
        for row in rows
    }


def _value(
    row: PrescriptionRow, findings: tuple[Finding, ...], picture: int | None
) -> rules.Prescription:
    claim = (
        Claim(str(row.claimed_by), row.claimed_until)
        if row.claimed_by is not None and row.claimed_until is not None
        else None
    )
    return rules.Prescription(
        id=row.id,
        pharmacy_id=row.pharmacy_id,
        state=State(row.state),
        history=(),
        dea_schedule=row.dea_schedule,
        claim=claim,
        findings=findings,
        patient_id=row.patient_id,
        checked_basis=row.checked_basis,
        picture=picture,
        **renewal_facts(row),
        rx_number=row.rx_number,
        fills_dispensed=row.fills_dispensed or 0,
    )


def renewal_facts(row: PrescriptionRow) -> dict[str, Any]:
    """What the renewal rules read of the stored order: its NumberOfRefills and
    ProhibitRenewalRequest, read without reading the whole values back (the columns hold what
    the value objects wrote, checked when the NewRx was parsed)."""
    refills = row.medication.get("number_of_refills")
    return {
        "refills": refills if isinstance(refills, int) else 0,
        "renewal_prohibited": row.details.get("prohibit_renewal_request") is True,
    }


# -- the patients' pictures -------------------------------------------------------------------


def picture_versions(
    session: Session, patient_ids: Iterable[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, int]:
    """The current version of each patient's picture (none for a patient whose picture has
    not changed since versions were first counted)."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    query = select(PatientPicture.patient_id, PatientPicture.version).where(
        PatientPicture.patient_id.in_(wanted)
    )
    if lock:
        query = query.order_by(PatientPicture.patient_id).with_for_update()
    versions: dict[uuid.UUID, int] = dict(session.execute(query).all())
    return versions


def picture_changed(session: Session, patient_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Count up the picture versions of ``patient_ids`` (their medications, open
    prescriptions or allergies changed, in the caller's unit of work), in ID order, and
    return the prescriptions whose findings that makes stale, for checking again after the
    commit (at most :data:`RECHECK_MAX` a patient)."""
    wanted = _count_up(session, patient_ids)
    return stale(session, wanted) if wanted else []


def _count_up(session: Session, patient_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Count up the picture versions of ``patient_ids``; those counted, in ID order."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return []
    now = utcnow()
    # one statement; its rows in ID order, so the row locks it takes never cross another's
    statement = _insert_for(session)(PatientPicture).values(
        [{"patient_id": patient, "version": 1, "changed_at": now} for patient in wanted]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[PatientPicture.patient_id],
            set_={"version": PatientPicture.version + 1, "changed_at": now},
        )
    )
    # the queues show whether the findings of a prescription awaiting a decision rest on the
    # picture of today
    revisions.touch(
        session,
        session.scalars(
            select(PrescriptionRow.pharmacy_id)
            .where(
                PrescriptionRow.patient_id.in_(wanted),
                PrescriptionRow.state.in_(sorted(REVIEWABLE)),
            )
            .distinct()
        ),
    )
    return wanted


def _insert_for(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite both have it)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def stale(session: Session, patient_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """The prescriptions of ``patient_ids`` awaiting a decision whose findings rest on an
    older picture than the patient's now, those checked longest ago first: in one query, at
    most :data:`RECHECK_MAX` times as many as the patients asked about."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return []
    return list(
        session.scalars(
            select(PrescriptionRow.id)
            .join(PatientPicture, PatientPicture.patient_id == PrescriptionRow.patient_id)
            .where(
                PrescriptionRow.patient_id.in_(wanted),
                PrescriptionRow.state.in_(sorted(REVIEWABLE)),
                or_(
                    PrescriptionRow.checked_basis.is_(None),
                    PrescriptionRow.checked_basis < PatientPicture.version,
                ),
            )
            .order_by(PrescriptionRow.checked_basis.nulls_first(), PrescriptionRow.id)
            .limit(RECHECK_MAX * len(wanted))
        )
    )


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """A decision to store: the value it was made on and its outcome."""

    before: rules.Prescription
    outcome: rules.Outcome

    @property
    def after(self) -> rules.Prescription:
        return self.outcome.rx

    @property
    def steps(self) -> tuple[Transition, ...]:
        """The transitions the decision appended."""
        return self.after.history[len(self.before.history) :]


def save(
    session: Session,
    changes: Sequence[Change],
    entries: list[dict[str, Any]],
    *,
    find_stale: bool = False,
) -> list[uuid.UUID]:
    """Write ``changes`` (of prescriptions :func:`load` locked) and then the audit
    ``entries`` (from :func:`audit.values`), the last statement. A change that adds a
    prescription to a patient's picture, takes it out, or moves it from pending to accepted
    changes the picture; with ``find_stale``, the prescriptions that makes stale are returned,
    for checking again after the commit (the worker looks once its chunk is finished)."""
    now = utcnow()
    moved = [c for c in changes if _row_values(c.after) != _row_values(c.before) or c.steps]
    # what the queues show: a row, a step, findings (a decision's notes and requests do not)
    checked = [c for c in changes if any(isinstance(e, rules.ChecksDone) for e in c.outcome.events)]
    revisions.touch(session, {c.after.pharmacy_id for c in (*moved, *checked)})
    if moved:
        session.execute(
            update(PrescriptionRow),
            [{"id": c.after.id, **_row_values(c.after), "updated_at": now} for c in moved],
        )
    transitions = [transition_row(c.after.id, step) for c in changes for step in c.steps]
    if transitions:
        session.execute(insert(PrescriptionTransition), transitions)
    _record_events(session, changes, now)
    changed = {
        patient
        for c in changes
        if _in_picture(c.before) != _in_picture(c.after)
        for patient in (c.before.patient_id, c.after.patient_id)
        if patient is not None
    }
    counted = _count_up(session, changed)
    made_stale = stale(session, counted) if find_stale and counted else []
    audit.append(session, entries)
    return made_stale


def _in_picture(rx: rules.Prescription) -> tuple[uuid.UUID, str] | None:
    """How a prescription is part of its patient's picture: pending or accepted (or not)."""
    if rx.patient_id is None:
        return None
    if rx.state in PENDING:
        return rx.patient_id, "pending"
    if rx.state in ACCEPTED:
        return rx.patient_id, "accepted"
    return None


def _row_values(rx: rules.Prescription) -> dict[str, Any]:
    """The prescription row's columns a decision may change."""
    return {
        "state": rx.state.value,
        "claimed_by": uuid.UUID(rx.claim.holder) if rx.claim else None,
        "claimed_until": rx.claim.until if rx.claim else None,
        "patient_id": rx.patient_id,
        "checked_basis": rx.checked_basis,
        "rx_number": rx.rx_number,
        "fills_dispensed": rx.fills_dispensed,
    }


def transition_row(rx_id: uuid.UUID, step: Transition) -> dict[str, Any]:
    return {
        "prescription_id": rx_id,
        "from_state": step.from_state.value if step.from_state else None,
        "to_state": step.to_state.value,
        "actor": step.actor,
        "reason": step.reason,
        "at": step.at,
    }


def _record_events(session: Session, changes: Sequence[Change], now: dt.datetime) -> None:
    checked = {
        c.after.id: event.findings
        for c in changes
        for event in c.outcome.events
        if isinstance(event, rules.ChecksDone)
    }
    if checked:
        session.execute(delete(FindingRow).where(FindingRow.prescription_id.in_(list(checked))))
        rows = [
            {
                "prescription_id": rx_id,
                "code": f.code,
                "severity": f.severity.value,
                "message": f.message,
                "evidence": dict(f.evidence),
                "created_at": now,
            }
            for rx_id, findings in checked.items()
            for f in findings
        ]
        if rows:
            session.execute(insert(FindingRow), rows)
    for change in changes:
        for event in change.outcome.events:
            if isinstance(event, rules.NoteAdded):
                session.add(
                    PrescriptionNote(
                        prescription_id=change.after.id,
                        author_id=uuid.UUID(event.author),
                        text=event.text,
                        created_at=event.at,
                    )
                )
            elif isinstance(event, rules.PriorAuthorizationRecorded):
                session.execute(
                    update(PrescriptionRow)
                    .where(PrescriptionRow.id == change.after.id)
                    .values(prior_authorization=event.number)
                )
            elif isinstance(event, rules.ClarificationAsked):
                sent = outbound.change_request(session, change.after.id, event)
                question = event.request
                session.add(
                    ClarificationRequest(
                        prescription_id=change.after.id,
                        requested_by=uuid.UUID(event.by),
                        reason_code=event.reason_code,
                        text=event.text,
                        created_at=event.at,
                        outbound_message_id=sent.id,
                        message_type=outbound.CHANGE_REQUEST,
                        message_id=sent.message_id,
                        request_code=question.kind.value,
                        detail=outbound.change_detail(question),
                    )
                )
            elif isinstance(event, rules.RenewalRequested):
                sent = outbound.renewal_request(session, change.after.id, event)
                session.add(
                    ClarificationRequest(
                        prescription_id=change.after.id,
                        requested_by=uuid.UUID(event.by),
                        reason_code="renewal",
                        text=event.note or "",
                        created_at=event.at,
                        outbound_message_id=sent.id,
                        message_type=outbound.RENEWAL_REQUEST,
                        message_id=sent.message_id,
                        detail={"refills": event.refills, "refills_used_stated": event.asserted},
                    )
                )
    session.flush()


def event_detail(outcome: rules.Outcome) -> dict[str, Any]:
    """What the audit entry of a decision says beyond its action: the state reached, and the
    overrides or reason code."""
    detail: dict[str, Any] = {"state": outcome.rx.state.value}
    for event in outcome.events:
        if isinstance(event, rules.Approved):
            detail["overrides"] = dict(event.overrides)
        elif isinstance(event, rules.Rejected):
            detail["reason_code"] = event.reason_code
        elif isinstance(event, rules.ClarificationAsked):
            detail["reason_code"] = event.reason_code
            detail["request_code"] = event.request.kind.value
            if event.request.sub_codes:
                detail["sub_codes"] = list(event.request.sub_codes)
        elif isinstance(event, rules.RenewalRequested):
            detail["renewal_requested"] = True
            if event.refills is not None:
                detail["refills"] = event.refills
            if event.asserted:
                detail["refills_used_stated"] = True
    return detail


# -- the checks -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """What the checks read of the patient's profile."""

    id: uuid.UUID
    allergies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientLink:
    """How a prescription's patient matched the pharmacy's profiles: the match (None without
    a usable key), the profile linked (None unless exact or new), and the audit entry of a
    profile just made for it (appended with the unit of work's last statement)."""

    match: PatientMatch | None
    profile: Profile | None
    created: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """A prescription whose patient is to be linked to a profile: ``linked`` is the profile
    an earlier, interrupted run linked it to."""

    pharmacy_id: uuid.UUID
    patient: Patient
    linked: uuid.UUID | None
    rx_id: uuid.UUID


class Linker(Protocol):
    """Links prescriptions' patients to profiles (``server.patients.directory.link``), in
    the order asked: a patient met twice gets one profile."""

    def __call__(self, session: Session, wanted: Sequence[LinkRequest]) -> list[PatientLink]: ...


@dataclass(frozen=True, slots=True)
class Started:
    """A prescription whose checks have started, with what they run on."""

    rx: rules.Prescription
    newrx: NewRx
    signature: DigitalSignature | None
    received_at: dt.datetime
    #: the state the receiving pharmacy is in (its expiry rules)
    pharmacy_state: str | None
    patient: PatientLink
    prescriber_order_number: str | None
    #: linked to its patient's profile by this run: the patient's picture changed with it
    linked: bool = False
    #: the prescription this one replaces or renews (not the same order sent twice)
    replaces: uuid.UUID | None = None


def start_checks(session: Session, ids: Iterable[uuid.UUID], link: Linker) -> list[Started]:
    """Move those of ``ids`` that are ``received`` to ``checking`` (those ``checking`` already, from
    an interrupted run, stay) and link their patients' profiles (``link``), in the caller's unit
    of work; those awaiting a decision on stale findings (the patient's picture changed since)
    start too, to be checked again, staying where they are; the others are finished or gone. The
    order is read back from its stored values (not parsed again from the message). A test
    message (``Header/TestMessage``) is left alone. New profiles' audit entries are the last
    statement, so the chain head's lock is held for no longer than that. A new link changes the
    patient's picture (the checker looks for what that made stale once it has finished)."""
    # a test message (``row.test``) is never checked nor linked: asked to, this does nothing
    locked = [row for row in _locked(session, ids) if not row.test]
    found = _values(session, locked)
    rows = [
        row
        for row in locked
        if found[row.id].state in (State.RECEIVED, State.CHECKING)
        or (found[row.id].state in REVIEWABLE and found[row.id].findings_stale)
    ]
    if not rows:
        return []
    # the rows (their order columns included) are read once, under the lock; the pharmacies'
    # states (their expiry rules) beside them
    pharmacy_ids = sorted({row.pharmacy_id for row in rows})
    query = select(Pharmacy.id, Pharmacy.state).where(Pharmacy.id.in_(pharmacy_ids))
    states: dict[uuid.UUID, str | None] = dict(session.execute(query).all())
    now = utcnow()
    started: list[Started] = []
    changes: list[Change] = []
    details = [from_json(OrderDetails, row.details) for row in rows]
    received = {row.id: row.received_at for row in rows}
    orders = [
        order.newrx(
            from_json(Patient, row.patient),
            from_json(Prescriber, row.prescriber),
            from_json(MedicationPrescribed, row.medication),
        )
        for row, order in zip(rows, details, strict=True)
    ]
    # linked in the order received: a new patient's first script makes the profile the
    # others match (the rows themselves are locked in ID order)
    wanted = sorted(
        (
            LinkRequest(row.pharmacy_id, newrx.patient, found[row.id].patient_id, row.id)
            for row, newrx in zip(rows, orders, strict=True)
        ),
        key=lambda r: (received[r.rx_id], r.rx_id),
    )
    by_rx = {r.rx_id: done for r, done in zip(wanted, link(session, wanted), strict=True)}
    patients = [by_rx[row.id] for row in rows]
    for row, order, newrx, patient in zip(rows, details, orders, patients, strict=True):
        rx = found[row.id]
        outcome = rules.Outcome(rx)
        if rx.state in (State.RECEIVED, State.CHECKING):
            outcome = rules.start_checks(rx, now)
        linking = patient.profile is not None and rx.patient_id != patient.profile.id
        if patient.profile is not None and linking:
            linked = rules.link_patient(outcome.rx, patient.profile.id)
            outcome = rules.Outcome(linked.rx, outcome.events + linked.events)
        changes.append(Change(rx, outcome))
        started.append(
            Started(
                outcome.rx,
                newrx,
                order.digital_signature,
                row.received_at,
                states[row.pharmacy_id],
                patient,
                row.prescriber_order_number,
                linking,
                row.replaces_prescription_id,
            )
        )
    save(session, changes, [p.patient.created for p in started if p.patient.created])
    return started


def carry_forward(
    session: Session,
    versions: Mapping[uuid.UUID, int],
    skip: Collection[uuid.UUID],
    compared: int,
) -> int:
    """Bring the findings of the prescriptions awaiting a decision of each patient in
    ``versions`` from picture ``version - 1`` to ``version`` without checking them again, when
    the one change between the two was the arrival of new prescriptions whose own checks (on
    ``version``) named none of them (``skip`` holds those named, and those just checked). The
    checks that compare two prescriptions are symmetric, so a pair the new ones did not find,
    these would not find either. Nothing is carried for a patient whose picture changed again
    meanwhile (those changes were not looked at), nor for one with more open prescriptions than
    a check compares (``compared``: the window and its PICTURE_INCOMPLETE count move too). Two
    statements for all the patients (their open prescriptions counted, then those carried,
    locked in ID order) and the update. Returns how many were carried."""
    if not versions:
        return 0
    # the open prescriptions counted once a patient (a patient flooded with scripts has
    # thousands: counted for each of them, the count would cost the square)
    crowded = {
        patient
        for patient, count in session.execute(
            select(PrescriptionRow.patient_id, func.count())
            .where(
                PrescriptionRow.patient_id.in_(sorted(versions)),
                PrescriptionRow.state.in_(sorted(PENDING)),
                PrescriptionRow.test.is_(False),
            )
            .group_by(PrescriptionRow.patient_id)
        )
        if count > compared
    }
    wanted = sorted((p, v) for p, v in versions.items() if p not in crowded)
    if not wanted:
        return 0
    carried = (
        select(PrescriptionRow.id)
        .join(PatientPicture, PatientPicture.patient_id == PrescriptionRow.patient_id)
        .where(
            or_(
                *(
                    and_(PatientPicture.patient_id == patient, PatientPicture.version == version)
                    for patient, version in wanted
                )
            ),
            PrescriptionRow.state.in_(sorted(REVIEWABLE)),
            PrescriptionRow.checked_basis == PatientPicture.version - 1,
            PrescriptionRow.id.not_in(sorted(skip)),
        )
        .order_by(PrescriptionRow.id)
        .with_for_update(of=PrescriptionRow)
    )
    ids = list(session.scalars(carried))
    if ids:
        revisions.touch(
            session,
            session.scalars(
                select(PrescriptionRow.pharmacy_id).where(PrescriptionRow.id.in_(ids)).distinct()
            ),
        )
        session.execute(
            update(PrescriptionRow)
            .where(PrescriptionRow.id.in_(ids))
            .values(checked_basis=PrescriptionRow.checked_basis + 1, updated_at=utcnow())
        )
    return len(ids)


# -- the hub's handlers ---------------------------------------------------------------------

Decide = Callable[[rules.Prescription, dt.datetime], rules.Outcome]
#: queues prescriptions for checking again (the hub's validation queue)
Recheck = Callable[[Sequence[uuid.UUID]], None]


class PrescriptionStore:
    """Decisions on one prescription from the hub's handlers: each in one unit of work that
    locks the prescription, decides, writes the outcome and audits it. A refusal (unknown ID,
    or a rule that says no) changes nothing, is audited too and raised after the commit."""

    def __init__(
        self,
        db: Database,
        recheck: Recheck | None = None,
        deliver: Deliver | None = None,
        notify: Triggers | None = None,
    ) -> None:
        self._db = db
        #: the patient's notifications (asking the prescriber; none: nothing notifies)
        self._notify = notify
        #: where prescriptions go to be checked again (the validation queue)
        self._recheck = recheck
        #: where outbound messages go to be delivered (without: the outbox sweep finds them)
        self._deliver = deliver

    def recheck(self, ids: Sequence[uuid.UUID]) -> None:
        """Queue ``ids`` (stale since a commit) for checking again; without a queue, the
        sweep finds them."""
        if ids and self._recheck is not None:
            self._recheck(ids)

    async def act(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        rx_id: uuid.UUID,
        action: str,
        decide: Decide,
    ) -> rules.Prescription:
        async with audit.refusable(self._db) as session:
            found = await session.run_sync(
                lambda s: load(
                    s, [rx_id], pharmacy_id=pharmacy_id, lock_pictures=True, requests=True
                ).get(rx_id)
            )
            if found is None:
                await _refuse(
                    session,
                    actor,
                    action,
                    rx_id,
                    "not_found",
                    {},
                    NotFound("No such prescription."),
                )
            now = utcnow()
            try:
                outcome = decide(found, now)
            except VerificationError as exc:
                detail = {"refused": exc.code, "codes": list(exc.codes)}
                await _refuse(session, actor, action, rx_id, "refused", detail, _problem(exc))
            entry = audit.values(actor, _event(action, rx_id, "success", event_detail(outcome)))
            made_stale = await session.run_sync(
                lambda s: self._save(s, action, Change(found, outcome), entry, now)
            )
            written = outbox.enqueued(session)
            told = self._notify.written(session) if self._notify is not None else []
        self.recheck(made_stale)
        if written and self._deliver is not None:
            self._deliver(written)
        if self._notify is not None:
            self._notify.publish(told)
        return outcome.rx

    def _save(
        self, session: Session, action: str, change: Change, entry: dict[str, Any], now: dt.datetime
    ) -> list[uuid.UUID]:
        rx = change.after
        if self._notify is not None and action == "clarify":
            self._notify.needs_prescriber(
                session, pharmacy_id=rx.pharmacy_id, patient_id=rx.patient_id, rx_id=rx.id, now=now
            )
        return save(session, [change], [entry], find_stale=True)


#: the store the hub's handlers decide through
PRESCRIPTIONS: web.AppKey[PrescriptionStore] = web.AppKey("prescriptions")
#: the validation queue's door for prescriptions to check again (set by ``server.worker``)
RECHECK: web.AppKey[Recheck] = web.AppKey("recheck")


async def _refuse(
    session: AsyncSession,
    actor: audit.Actor,
    action: str,
    rx_id: uuid.UUID,
    outcome: str,
    detail: dict[str, Any],
    problem: Problem,
) -> NoReturn:
    await audit.refuse(session, actor, _event(action, rx_id, outcome, detail), problem)


def _event(action: str, rx_id: uuid.UUID, outcome: str, detail: dict[str, Any]) -> audit.Event:
    return audit.Event(
        f"prescription.{action}", "prescription", str(rx_id), outcome=outcome, detail=detail
    )


def _problem(exc: VerificationError) -> Problem:
    extra = {"codes": list(exc.codes)} if exc.codes else {}
    if exc.code in _CONFLICTS:
        problem: Problem = Conflict(exc.detail, extra=extra)
        problem.code = exc.code
        return problem
    if exc.code == "controlled_substance_permission":
        forbidden = Forbidden(exc.detail)
        forbidden.code = exc.code
        return forbidden
    return Unprocessable(exc.code, exc.detail, extra=extra)


# -- the intake -----------------------------------------------------------------------------


def keep_received(
    session: Session,
    message: Message,
    raw: bytes,
    client_id: str,
    pharmacy_id: uuid.UUID,
    now: dt.datetime,
) -> uuid.UUID:
    """Keep a message the intake decides in a unit of work of its own (CancelRx, a
    prescriber's answer, a late reply) exactly as received, bytes and hash, in the caller's
    unit of work; :class:`~server.prescriptions.writer.Duplicate` when its (client, From,
    MessageID) is stored already (nothing written: the caller tells a resend from a reuse)."""
    header = message.header
    inbound_id = uuid.uuid4()
    stored = session.execute(
        insert_ignoring_conflicts(InboundMessage, session.get_bind().dialect.name).values(
            id=inbound_id,
            sender_client_id=client_id,
            sender=header.from_.text,
            message_id=header.message_id,
            relates_to_message_id=header.relates_to_message_id,
            transaction=message.transaction,
            version=message.version,
            pharmacy_id=pharmacy_id,
            sha256=hashlib.sha256(raw).hexdigest(),
            raw=raw,
            received_at=now,
        )
    )
    if stored.rowcount == 0:  # type: ignore[attr-defined]
        raise Duplicate
    return inbound_id


def intake_record(
    message: Message,
    newrx: NewRx,
    raw: bytes,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    now: dt.datetime,
) -> IntakeRecord:
    """The rows of one NewRx for the intake's batched writer: the original bytes, the
    prescription as :func:`eprescribe.prescriptions.receive` makes it, its first transition
    and its audit entry. A test message (``Header/TestMessage``) is stored the same way with
    ``test`` set: it stays ``received``, outside every queue, and is never checked."""
    header, medication = message.header, newrx.medication
    inbound_id = uuid.uuid4()
    rx = rules.receive(
        uuid.uuid4(), pharmacy_id, str(actor), message.transaction, now, medication.dea_schedule
    )
    return IntakeRecord(
        message={
            "id": inbound_id,
            "sender_client_id": actor.id,
            "sender": header.from_.text,
            "message_id": header.message_id,
            "relates_to_message_id": header.relates_to_message_id,
            "transaction": message.transaction,
            "version": message.version,
            "pharmacy_id": pharmacy_id,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "raw": raw,
            "received_at": now,
        },
        prescription={
            "id": rx.id,
            "pharmacy_id": pharmacy_id,
            "inbound_message_id": inbound_id,
            "message_id": header.message_id,
            "prescriber_order_number": header.prescriber_order_number,
            **_row_values(rx),
            "drug_description": medication.drug_description,
            "dea_schedule": rx.dea_schedule,
            "written_date": medication.written_date.date,
            # value objects go to the JSON columns as they are (see server.db.json_dumps)
            "patient": newrx.patient,
            "prescriber": newrx.prescriber,
            "medication": medication,
            "details": OrderDetails.of(header, newrx),
            "received_at": now,
            "updated_at": now,
            "urgent": newrx.urgency_indicator_code == URGENT,
            "test": header.test_message,
            "rx_fill_indicator": medication.rx_fill_indicator,
        },
        transition=transition_row(rx.id, rx.history[0]),
        audit=audit.values(
            actor,
            audit.Event(
                "prescription.receive",
                "prescription",
                str(rx.id),
                pharmacy_id=pharmacy_id,
                detail={
                    "message_id": header.message_id,
                    "transaction": message.transaction,
                    **({"test": True} if header.test_message else {}),
                },
            ),
            now,
        ),
    )


def add_replacement(
    session: Session,
    rx: rules.Prescription,
    *,
    message: Message,
    inbound_id: uuid.UUID,
    order: NewRx,
    details: OrderDetails,
    replaces: uuid.UUID,
    replacement: str,
    urgent: bool,
    prescriber_order_number: str | None,
) -> None:
    """Insert the prescription a prescriber's answer made (``rx``, as
    :func:`eprescribe.prescriptions.receive_replacement` made it) and its first transition,
    in the caller's unit of work: stored like a NewRx's (``order`` is what it prescribes), so
    the checks and everything after read it the same way, naming the one it ``replaces``
    (``replacement``: ``change`` or ``renewal``); ``prescriber_order_number`` is the
    answer's, else the original's (so a later CancelRx finds it by the number it knows)."""
    header, medication = message.header, order.medication
    now = rx.history[0].at
    session.execute(
        insert(PrescriptionRow).values(
            id=rx.id,
            pharmacy_id=rx.pharmacy_id,
            inbound_message_id=inbound_id,
            message_id=header.message_id,
            prescriber_order_number=prescriber_order_number,
            **_row_values(rx),
            drug_description=medication.drug_description,
            dea_schedule=rx.dea_schedule,
            written_date=medication.written_date.date,
            patient=order.patient,
            prescriber=order.prescriber,
            medication=medication,
            details=details,
            received_at=now,
            updated_at=now,
            urgent=urgent,
            test=False,
            replaces_prescription_id=replaces,
            replacement=replacement,
            rx_fill_indicator=medication.rx_fill_indicator,
        )
    )
    session.execute(insert(PrescriptionTransition), [transition_row(rx.id, rx.history[0])])
    revisions.touch(session, [rx.pharmacy_id])
