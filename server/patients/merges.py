"""The match-review queue and the merges of two profiles: the one writer of
``patient_merges`` and of a profile's ``merged_into_id``.

A prescription whose patient matched weakly or ambiguously (``PATIENT_MATCH_REVIEW``) stays
unlinked; a pharmacist links it to a candidate profile or to a new one made from its patient
(:func:`link`). A pharmacist may merge two profiles of the pharmacy (:func:`merge`): every row
of the merged profile moves to the survivor and the merge records which, so :func:`unmerge`
moves exactly those back (or refuses, saying why). Never automatic.

Blocking functions on the caller's :class:`~sqlalchemy.orm.Session`, inside its unit of work
(``session.run_sync``): the prescriptions move through their store (``load`` and ``save``, the
prescriptions' one writer), which counts up the patients' pictures; what that makes stale is
returned, for the checks after the commit. A refusal raises :class:`Refused` before anything is
written; the audit entry is the last statement, with both profile IDs and the counts moved.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from eprescribe import prescriptions as rules
from eprescribe.ncpdp import Patient, from_json
from eprescribe.patients import (
    ContactPoint,
    MatchKey,
    compare,
    contacts_to_move,
    merge_refusal,
    preferences_move,
)
from eprescribe.workflow import State

from .. import audit
from ..consults.models import ConsultRow
from ..db.models import utcnow
from ..errors import Conflict, NotFound, Problem, Unprocessable
from ..notifications.models import Notification
from ..prescriptions import store
from ..prescriptions.models import Finding, PatientPicture, Prescription
from .directory import _key, _new_profile
from .models import (
    PatientAllergy,
    PatientContact,
    PatientMerge,
    PatientPreferences,
    PatientProfile,
)

#: the finding of a prescription whose patient matched weakly or ambiguously
REVIEW_CODE = "PATIENT_MATCH_REVIEW"
#: states whose prescriptions are not (or no longer) in the queue: not yet checked, or ended
_NOT_QUEUED = (State.RECEIVED, State.CHECKING, State.REJECTED, State.CANCELLED)
#: the tables other than prescriptions and contacts whose rows name a profile and move with
#: a merge (a table that refers to profiles is added here, and to the docs' list)
#: what another feature says stops a merge of a profile into another (a code and its words),
#: plugged in by that feature's setup (e.g. the merged profile's active payment plan)
MergeCheck = Callable[[Session, uuid.UUID], tuple[str, str] | None]
MERGE_CHECKS: list[MergeCheck] = []

#: what another feature says an unmerge could not undo exactly (a name and a count), plugged in
#: by that feature's setup (e.g. money the kept profile was charged or paid since the merge)
UnmergeCheck = Callable[[Session, PatientMerge], tuple[str, int] | None]
UNMERGE_CHECKS: list[UnmergeCheck] = []

MOVED_TABLES: dict[str, Any] = {
    "consults": ConsultRow,
    "notifications": Notification,
    "allergies": PatientAllergy,
}


@dataclass(frozen=True, slots=True)
class Mover:
    """Rows another feature moves itself (a table keyed by the profile, rows that may not
    follow it), plugged in by that feature's setup: ``merge`` moves what it moves and answers
    what goes into the merge's record under ``names`` (each a list, counted in its counts);
    ``not_exact`` what an unmerge could not undo exactly (names and counts); ``unmerge`` puts
    back what ``merge`` moved."""

    names: tuple[str, ...]
    merge: Callable[[Session, uuid.UUID, uuid.UUID], dict[str, list[str]]]
    not_exact: Callable[[Session, PatientMerge], dict[str, int]]
    unmerge: Callable[[Session, PatientMerge], None]


MOVERS: list[Mover] = []


class Refused(Exception):
    """A refusal, before anything was written: the problem answered and the audit outcome."""

    def __init__(self, problem: Problem, outcome: str = "refused") -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.outcome = outcome


def _conflict(code: str, detail: str) -> Refused:
    problem = Conflict(detail)
    problem.code = code
    return Refused(problem)


# -- the queue ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    profile: PatientProfile
    agree: tuple[str, ...]
    differ: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    rx: Prescription
    match: dict[str, Any]
    candidates: list[Candidate]


def queued(pharmacy_id: uuid.UUID) -> Any:
    """The condition of a prescription in the pharmacy's match-review queue."""
    return and_(
        Prescription.pharmacy_id == pharmacy_id,
        Prescription.patient_id.is_(None),
        Prescription.test.is_(False),
        Prescription.state.not_in([s.value for s in _NOT_QUEUED]),
        exists().where(Finding.prescription_id == Prescription.id, Finding.code == REVIEW_CODE),
    )


def queue(
    session: Session,
    pharmacy_id: uuid.UUID,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Entry]:
    """A page of the queue, oldest first (keyset on received time and ID), each with its
    candidates now: the pharmacy's profiles, not merged, sharing the patient's normalised
    name and birth date, or named by the finding."""
    query = select(Prescription).where(queued(pharmacy_id))
    if after is not None:
        at, key = after
        query = query.where(
            or_(
                Prescription.received_at > at,
                and_(Prescription.received_at == at, Prescription.id > key),
            )
        )
    rows = list(
        session.scalars(query.order_by(Prescription.received_at, Prescription.id).limit(limit))
    )
    if not rows:
        return []
    findings = {
        f.prescription_id: f
        for f in session.scalars(
            select(Finding)
            .where(Finding.prescription_id.in_([r.id for r in rows]), Finding.code == REVIEW_CODE)
            .order_by(Finding.id)
        )
    }
    return [_entry(session, row, findings.get(row.id)) for row in rows]


def _entry(session: Session, row: Prescription, finding: Finding | None) -> Entry:
    key = MatchKey.of(from_json(Patient, row.patient))
    evidence = dict(finding.evidence) if finding else {}
    return Entry(row, evidence, candidates(session, row.pharmacy_id, key, evidence))


def candidates(
    session: Session, pharmacy_id: uuid.UUID, key: MatchKey | None, evidence: dict[str, Any]
) -> list[Candidate]:
    named = []
    for text in evidence.get("candidates", []):
        try:
            named.append(uuid.UUID(str(text)))
        except ValueError:
            continue
    conditions: list[Any] = [PatientProfile.id.in_(named)] if named else []
    if key is not None:
        conditions.append(
            and_(
                PatientProfile.last_name_key == key.last,
                PatientProfile.first_name_key == key.first,
                PatientProfile.date_of_birth == key.date_of_birth,
            )
        )
    if not conditions:
        return []
    profiles = session.scalars(
        select(PatientProfile)
        .where(
            PatientProfile.pharmacy_id == pharmacy_id,
            PatientProfile.merged_into_id.is_(None),
            or_(*conditions),
        )
        .order_by(PatientProfile.created_at, PatientProfile.id)
    )
    found = []
    for p in profiles:
        why = compare(key, _key(p)) if key else None
        found.append(Candidate(p, why.agree if why else (), why.differ if why else ()))
    return found


# -- linking --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Linked:
    patient_id: uuid.UUID
    created: bool
    stale: list[uuid.UUID]


def link(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    rx_id: uuid.UUID,
    profile_id: uuid.UUID | None,
) -> Linked:
    """Link prescription ``rx_id`` of the queue to candidate ``profile_id``, or (None) to a new
    profile made from its patient; the patient's picture changes, so the prescription (its
    findings on no picture) and the profile's open ones are returned to be checked again."""
    row = session.scalar(
        select(Prescription)
        .where(Prescription.id == rx_id, Prescription.pharmacy_id == pharmacy_id)
        .with_for_update()
    )
    if row is None:
        raise Refused(NotFound("No such prescription."), "not_found")
    in_queue = session.scalar(
        select(Prescription.id).where(queued(pharmacy_id), Prescription.id == rx_id)
    )
    if row.patient_id is not None:
        raise _conflict("already_linked", "The prescription is already linked to a profile.")
    if in_queue is None:
        raise _conflict("not_in_review", "The prescription is not in the match-review queue.")
    key = MatchKey.of(from_json(Patient, row.patient))
    if key is None:
        raise Refused(
            Unprocessable("no_match_key", "The prescription's patient cannot be matched.")
        )
    created = profile_id is None
    if profile_id is None:
        profile = _new_profile(pharmacy_id, key, from_json(Patient, row.patient))
        session.add(profile)
        session.flush()
    else:
        found = session.scalar(
            select(PatientProfile)
            .where(PatientProfile.id == profile_id, PatientProfile.pharmacy_id == pharmacy_id)
            .with_for_update()
        )
        if found is None:
            raise Refused(NotFound("No such patient."), "not_found")
        if found.merged_into_id is not None:
            raise _conflict("profile_merged", "That profile was merged into another.")
        if (found.last_name_key, found.first_name_key, found.date_of_birth) != (
            key.last,
            key.first,
            key.date_of_birth,
        ):
            raise Refused(
                Unprocessable(
                    "not_a_candidate",
                    "The profile does not share the patient's name and date of birth: "
                    "create a profile, then merge the two.",
                )
            )
        profile = found
    [rx] = store.load(session, [rx_id], pharmacy_id=pharmacy_id).values()
    linked = rules.link_patient(dataclasses.replace(rx, checked_basis=None), profile.id)
    store.save(session, [store.Change(rx, linked)], [])
    stale = store.picture_changed(session, [profile.id])
    entries = [
        audit.values(
            actor,
            audit.Event(
                "patient.match.link",
                "prescription",
                str(rx_id),
                pharmacy_id=pharmacy_id,
                detail={"patient_id": str(profile.id), "created": created},
            ),
        )
    ]
    if created:
        entries.insert(
            0,
            audit.values(
                actor,
                audit.Event(
                    "patient.create",
                    "patient",
                    str(profile.id),
                    pharmacy_id=pharmacy_id,
                    detail={"prescription_id": str(rx_id)},
                ),
            ),
        )
    audit.append(session, entries)
    return Linked(profile.id, created, stale)


# -- merging --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Merged:
    merge: PatientMerge
    counts: dict[str, int]
    stale: list[uuid.UUID]


def _profiles(
    session: Session, pharmacy_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PatientProfile]:
    """The profiles of ``ids`` in the pharmacy, locked in ID order (two merges of the same
    profiles wait for each other, never in a circle)."""
    return {
        p.id: p
        for p in session.scalars(
            select(PatientProfile)
            .where(
                PatientProfile.id.in_(sorted(set(ids))), PatientProfile.pharmacy_id == pharmacy_id
            )
            .order_by(PatientProfile.id)
            .with_for_update()
        )
    }


def merge(
    session: Session,
    actor: audit.Actor,
    user_id: uuid.UUID,
    pharmacy_id: uuid.UUID,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
) -> Merged:
    """Merge profile ``merged_id`` into ``survivor_id`` (both of the pharmacy)."""
    found = _profiles(session, pharmacy_id, [survivor_id, merged_id])
    if survivor_id not in found or merged_id not in found:
        raise Refused(NotFound("No such patient."), "not_found")
    survivor, merged = found[survivor_id], found[merged_id]
    why = merge_refusal(
        str(survivor_id),
        str(merged_id),
        str(survivor.merged_into_id) if survivor.merged_into_id else None,
        str(merged.merged_into_id) if merged.merged_into_id else None,
    )
    if why is not None:
        code, detail = why
        if code == "merge_self":
            raise Refused(Unprocessable(code, detail))
        raise _conflict(code, detail)
    for check in MERGE_CHECKS:
        stopped = check(session, merged_id)
        if stopped is not None:
            raise _conflict(*stopped)
    moved: dict[str, Any] = {}
    # prescriptions, through their store (their pictures counted up, findings made stale)
    rx_ids = list(
        session.scalars(select(Prescription.id).where(Prescription.patient_id == merged_id))
    )
    _move_prescriptions(session, rx_ids, pharmacy_id, survivor_id)
    moved["prescriptions"] = [str(i) for i in sorted(rx_ids)]
    for name, model in MOVED_TABLES.items():
        ids = sorted(session.scalars(select(model.id).where(model.patient_id == merged_id)))
        if ids:
            session.execute(update(model).where(model.id.in_(ids)).values(patient_id=survivor_id))
        moved[name] = [str(i) for i in ids]
    for mover in MOVERS:
        moved.update(mover.merge(session, survivor_id, merged_id))
    # contact points: an address the survivor has stays with the merged profile
    held = [
        ContactPoint(str(c.id), c.kind, c.value)
        for c in session.scalars(
            select(PatientContact).where(PatientContact.patient_id == survivor_id)
        )
    ]
    theirs = [
        ContactPoint(str(c.id), c.kind, c.value)
        for c in session.scalars(
            select(PatientContact)
            .where(PatientContact.patient_id == merged_id)
            .order_by(PatientContact.created_at, PatientContact.id)
        )
    ]
    moving, staying = contacts_to_move(held, theirs)
    if moving:
        session.execute(
            update(PatientContact)
            .where(PatientContact.id.in_([uuid.UUID(i) for i in moving]))
            .values(patient_id=survivor_id)
        )
    moved["contacts"], moved["contacts_kept"] = moving, staying
    # preferences: one row a profile; the survivor's kept, else the merged's moves
    has = set(
        session.scalars(
            select(PatientPreferences.patient_id).where(
                PatientPreferences.patient_id.in_([survivor_id, merged_id])
            )
        )
    )
    moved["preferences"] = preferences_move(survivor_id in has, merged_id in has)
    if moved["preferences"]:
        session.execute(
            update(PatientPreferences)
            .where(PatientPreferences.patient_id == merged_id)
            .values(patient_id=survivor_id)
        )
    now = utcnow()
    merged.merged_into_id = survivor_id
    merged.updated_at = now
    record = PatientMerge(
        id=uuid.uuid4(),
        pharmacy_id=pharmacy_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        merged_by=user_id,
        moved=moved,
        created_at=now,
    )
    session.add(record)
    session.flush()
    stale = _pictures_changed(session, [survivor_id, merged_id])
    counts = counts_of(moved)
    audit.append(
        session,
        [
            audit.values(
                actor,
                audit.Event(
                    "patient.merge",
                    "patient",
                    str(survivor_id),
                    pharmacy_id=pharmacy_id,
                    detail={
                        "merge_id": str(record.id),
                        "survivor_id": str(survivor_id),
                        "merged_id": str(merged_id),
                        "moved": counts,
                        "rechecking": len(stale),
                    },
                ),
            )
        ],
    )
    return Merged(record, counts, stale)


def counts_of(moved: dict[str, Any]) -> dict[str, int]:
    """How many rows of each kind a merge moved (preferences: 0 or 1)."""
    counts = {
        name: len(moved.get(name, []))
        for name in (
            "prescriptions",
            *MOVED_TABLES,
            *(name for mover in MOVERS for name in mover.names),
            "contacts",
            "contacts_kept",
        )
    }
    counts["preferences"] = int(bool(moved.get("preferences")))
    return counts


def _move_prescriptions(
    session: Session, ids: Sequence[uuid.UUID], pharmacy_id: uuid.UUID, to: uuid.UUID
) -> None:
    """Move prescriptions ``ids`` to profile ``to`` through their store; their findings rest
    on no picture of ``to``: they are checked again (``checked_basis`` cleared)."""
    if not ids:
        return
    rxs = store.load(session, ids, pharmacy_id=pharmacy_id)
    changes = [
        store.Change(rx, rules.link_patient(dataclasses.replace(rx, checked_basis=None), to))
        for rx in rxs.values()
    ]
    store.save(session, changes, [])


def _pictures_changed(session: Session, patient_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Count up both profiles' pictures, to one version past both (a check that began on the
    other profile's picture before the merge finishes with a basis older than either, so it
    is found stale and checked again); the prescriptions that makes stale."""
    store.picture_changed(session, patient_ids)
    versions = store.picture_versions(session, patient_ids, lock=True)
    top = max(versions.values())
    session.execute(
        update(PatientPicture)
        .where(PatientPicture.patient_id.in_(sorted(patient_ids)))
        .values(version=top, changed_at=utcnow())
    )
    return store.stale(session, patient_ids)


@dataclass(frozen=True, slots=True)
class Unmerged:
    merge: PatientMerge
    counts: dict[str, int]
    stale: list[uuid.UUID]


def find_merge(
    session: Session, pharmacy_id: uuid.UUID, merge_id: uuid.UUID
) -> PatientMerge | None:
    return session.scalar(
        select(PatientMerge).where(
            PatientMerge.id == merge_id, PatientMerge.pharmacy_id == pharmacy_id
        )
    )


def merges_of(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID
) -> list[PatientMerge]:
    """The merges a profile took part in (as survivor or merged), newest first."""
    return list(
        session.scalars(
            select(PatientMerge)
            .where(
                PatientMerge.pharmacy_id == pharmacy_id,
                or_(PatientMerge.survivor_id == patient_id, PatientMerge.merged_id == patient_id),
            )
            .order_by(PatientMerge.created_at.desc(), PatientMerge.id)
        )
    )


def unmerge(
    session: Session,
    actor: audit.Actor,
    user_id: uuid.UUID,
    pharmacy_id: uuid.UUID,
    merge_id: uuid.UUID,
) -> Unmerged:
    """Undo merge ``merge_id`` exactly: the rows it moved go back to the merged profile, which
    is no longer merged. Refused (nothing written) when that cannot be exact."""
    record = session.scalar(
        select(PatientMerge)
        .where(PatientMerge.id == merge_id, PatientMerge.pharmacy_id == pharmacy_id)
        .with_for_update()
    )
    if record is None:
        raise Refused(NotFound("No such merge."), "not_found")
    found = _profiles(session, pharmacy_id, [record.survivor_id, record.merged_id])
    survivor, merged = found[record.survivor_id], found[record.merged_id]
    if record.unmerged_at is not None:
        raise _conflict("already_unmerged", "This merge was already undone.")
    if survivor.merged_into_id is not None:
        raise _conflict(
            "survivor_merged",
            "The kept profile was merged into another since: undo that merge first.",
        )
    moved = record.moved
    missing: dict[str, int] = {}
    rx_ids = [uuid.UUID(i) for i in moved.get("prescriptions", [])]
    tables: dict[str, tuple[Any, list[uuid.UUID]]] = {
        "prescriptions": (Prescription, rx_ids),
        **{n: (m, [uuid.UUID(i) for i in moved.get(n, [])]) for n, m in MOVED_TABLES.items()},
        "contacts": (PatientContact, [uuid.UUID(i) for i in moved.get("contacts", [])]),
    }
    for name, (model, ids) in tables.items():
        if not ids:
            continue
        still = set(
            session.scalars(
                select(model.id).where(model.id.in_(ids), model.patient_id == record.survivor_id)
            )
        )
        if len(still) != len(ids):
            missing[name] = len(ids) - len(still)
    contact_ids = tables["contacts"][1]
    if contact_ids:
        back = {
            (c.kind, c.value)
            for c in session.scalars(
                select(PatientContact).where(PatientContact.id.in_(contact_ids))
            )
        }
        clash = sum(
            1
            for c in session.scalars(
                select(PatientContact).where(PatientContact.patient_id == record.merged_id)
            )
            if (c.kind, c.value) in back
        )
        if clash:
            missing["contacts_clash"] = clash
    prefs = moved.get("preferences", False)
    if prefs:
        here = set(
            session.scalars(
                select(PatientPreferences.patient_id).where(
                    PatientPreferences.patient_id.in_([record.survivor_id, record.merged_id])
                )
            )
        )
        if record.survivor_id not in here or record.merged_id in here:
            missing["preferences"] = 1
    for check in UNMERGE_CHECKS:
        found_since = check(session, record)
        if found_since is not None:
            missing[found_since[0]] = found_since[1]
    for mover in MOVERS:
        missing.update(mover.not_exact(session, record))
    if missing:
        raise _conflict(
            "unmerge_not_exact",
            "Not every row this merge moved is still with the kept profile ("
            + ", ".join(f"{name}: {count}" for name, count in sorted(missing.items()))
            + "); undoing it would not be exact.",
        )
    _move_prescriptions(session, rx_ids, pharmacy_id, record.merged_id)
    for name, (model, ids) in tables.items():
        if name != "prescriptions" and ids:
            session.execute(
                update(model).where(model.id.in_(ids)).values(patient_id=record.merged_id)
            )
    if prefs:
        session.execute(
            update(PatientPreferences)
            .where(PatientPreferences.patient_id == record.survivor_id)
            .values(patient_id=record.merged_id)
        )
    for mover in MOVERS:
        mover.unmerge(session, record)
    now = utcnow()
    merged.merged_into_id = None
    merged.updated_at = now
    record.unmerged_at = now
    record.unmerged_by = user_id
    session.flush()
    stale = _pictures_changed(session, [record.survivor_id, record.merged_id])
    counts = counts_of(moved)
    audit.append(
        session,
        [
            audit.values(
                actor,
                audit.Event(
                    "patient.unmerge",
                    "patient",
                    str(record.merged_id),
                    pharmacy_id=pharmacy_id,
                    detail={
                        "merge_id": str(record.id),
                        "survivor_id": str(record.survivor_id),
                        "merged_id": str(record.merged_id),
                        "moved": counts,
                        "rechecking": len(stale),
                    },
                ),
            )
        ],
    )
    return Unmerged(record, counts, stale)
