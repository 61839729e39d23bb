"""Running the checks for one prescription: idempotent, safe to run twice at once.

Two short transactions around the pure checks: the first moves ``received`` to ``checking``,
the second replaces the findings and moves ``checking`` to ``awaiting_review`` only if the
prescription is still ``checking``. A redelivered or duplicated task therefore either finds
nothing to do or finishes a check that never completed; a prescription never ends with two
sets of findings.

A chunk that fails for a reason other than the database (server.worker.failures) is checked
again one prescription at a time; one that still fails on its own is parked: moved to the
pharmacist's queue with a CHECKS_FAILED hard stop, so it neither waits for ever nor holds up
the prescriptions it was queued with.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from eprescribe import workflow
from eprescribe.checks import (
    ActiveMedication,
    CheckContext,
    ExpiryRules,
    Finding,
    PatientMatch,
    build_context,
    checks_failed,
    identify,
    run_checks,
    supply_ends,
)
from eprescribe.drugs import DrugReference
from eprescribe.ncpdp import MedicationPrescribed, NewRx, from_json, parse_message
from eprescribe.patients import MatchKey, classify
from eprescribe.workflow import State

from .. import audit
from ..db import sync_engine
from ..db.models import Finding as FindingRow
from ..db.models import (
    InboundMessage,
    PatientProfile,
    Pharmacy,
    Prescription,
    PrescriptionTransition,
    utcnow,
)
from ..settings import Settings, SettingsError
from .failures import is_transient

log = logging.getLogger(__name__)
ACTOR = audit.Actor("system", "checks")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    prescription_id: uuid.UUID
    findings: tuple[Finding, ...]


ACCEPTED = (State.APPROVED, State.DISPENSING, State.READY, State.COMPLETED)


def load_expiry_rules(path: str) -> ExpiryRules:
    """The operator's expiry rules (``TELEPHARM_EXPIRY_RULES``), or the federal defaults."""
    if not path:
        return ExpiryRules()
    try:
        return ExpiryRules.from_mapping(json.loads(Path(path).read_text()))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise SettingsError(f"TELEPHARM_EXPIRY_RULES {path}: {exc}") from exc


class Checker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        reference: DrugReference,
        expiry: ExpiryRules | None = None,
    ) -> None:
        self._sessions = sessions
        self._reference = reference
        self._expiry = expiry or ExpiryRules()

    @classmethod
    def from_settings(cls, settings: Settings) -> Checker:
        from ..drugs import reference_with_imports

        engine = sync_engine(settings.sync_database_url)
        return cls(
            sessionmaker(engine, expire_on_commit=False),
            reference_with_imports(engine),
            load_expiry_rules(settings.expiry_rules_file),
        )

    def close(self) -> None:
        engine = self._sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def check(self, rx_id: uuid.UUID) -> CheckOutcome | None:
        """Check one prescription; None when there was nothing (left) to do."""
        outcomes = self.check_many([rx_id])
        return outcomes[0] if outcomes else None

    def check_many(self, ids: Sequence[uuid.UUID]) -> list[CheckOutcome]:
        """Check a chunk of prescriptions with two transactions for the whole chunk; should
        that fail other than transiently, one at a time, parking any that fail alone.
        Transient failures propagate (the task retries)."""
        chunk = sorted(set(ids))
        try:
            return self._check_together(chunk)
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(chunk) == 1:
                return self._park(chunk[0], exc)
            log.warning(
                "a chunk of %d checks failed (%s); checking them one at a time",
                len(chunk),
                _describe(exc),
            )
        return [outcome for rx_id in chunk for outcome in self.check_many([rx_id])]

    def _check_together(self, ids: list[uuid.UUID]) -> list[CheckOutcome]:
        contexts = self._start(ids)
        results = {rx_id: run_checks(context) for rx_id, context in contexts.items()}
        done = self._finish(results) if results else []
        for rx_id in done:
            log.info("checked prescription %s: %d findings", rx_id, len(results[rx_id]))
        return [CheckOutcome(rx_id, results[rx_id]) for rx_id in done]

    def _start(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, CheckContext]:
        """Claim the prescriptions and gather their contexts, in one transaction (rows are
        locked in ID order, so concurrent chunks cannot deadlock)."""
        with self._sessions.begin() as session:
            rows = session.execute(
                select(Prescription, InboundMessage.raw, InboundMessage.received_at, Pharmacy.state)
                .join(InboundMessage, Prescription.inbound_message_id == InboundMessage.id)
                .join(Pharmacy, Prescription.pharmacy_id == Pharmacy.id)
                .where(Prescription.id.in_(ids))
                .order_by(Prescription.id)
                .with_for_update(of=Prescription)
            ).all()
            open_rows = [r for r in rows if r[0].state in (State.RECEIVED, State.CHECKING)]
            fresh = [r[0].id for r in open_rows if r[0].state == State.RECEIVED]
            _move(session, fresh, State.RECEIVED, State.CHECKING, "checks started")
            created: list[dict[str, Any]] = []  # audit entries of new patient profiles
            contexts = {
                rx.id: self._context(session, rx, raw, at, state, created)
                for rx, raw, at, state in open_rows
            }
            # last: the chain head's lock is not held while the chunk is parsed and identified
            audit.append(session, created)
            return contexts

    def _context(
        self,
        session: Session,
        rx: Prescription,
        raw: bytes,
        received_at: dt.datetime,
        state: str | None,
        created: list[dict[str, Any]],
    ) -> CheckContext:
        message = parse_message(raw)  # it parsed at intake; the same bytes parse the same
        assert isinstance(message.body, NewRx)
        match, profile = _link_patient(session, rx, message.body, created)
        active = self._active(session, profile.id, rx.id) if profile else ()
        return build_context(
            message.body,
            received_at,
            signature=message.header.digital_signature,
            reference=self._reference,
            active=active,
            profile_allergies=profile.allergies if profile else (),
            patient_match=match,
            state=state,
            expiry=self._expiry,
        )

    def _active(
        self, session: Session, patient_id: uuid.UUID, rx_id: uuid.UUID
    ) -> tuple[ActiveMedication, ...]:
        """The patient's other accepted prescriptions whose supply has not run out."""
        today = utcnow().date()
        rows = session.execute(
            select(Prescription.id, Prescription.medication, Prescription.received_at)
            .where(
                Prescription.patient_id == patient_id,
                Prescription.id != rx_id,
                Prescription.state.in_(ACCEPTED),
            )
            .order_by(Prescription.received_at)
        )
        medications = ((i, from_json(MedicationPrescribed, m), at) for i, m, at in rows)
        return tuple(
            ActiveMedication(
                str(other_id),
                medication.drug_description,
                identify(self._reference, medication).drug,
            )
            for other_id, medication, received in medications
            if supply_ends(medication, received.date()) >= today
        )

    def _finish(self, results: dict[uuid.UUID, tuple[Finding, ...]]) -> list[uuid.UUID]:
        """Store the findings of those still ``checking`` and move them on, in one
        transaction; the others were finished by another run in the meantime."""
        with self._sessions.begin() as session:
            still = list(
                session.scalars(
                    select(Prescription.id)
                    .where(
                        Prescription.id.in_(sorted(results)), Prescription.state == State.CHECKING
                    )
                    .order_by(Prescription.id)
                    .with_for_update()
                )
            )
            if still:
                _conclude(session, {rx_id: results[rx_id] for rx_id in still}, "checks done")
        return still

    def _park(self, rx_id: uuid.UUID, error: Exception) -> list[CheckOutcome]:
        """Send a prescription whose checks cannot run to the pharmacist's queue, with a
        finding that says so (nothing when another run has finished it meanwhile)."""
        log.warning("prescription %s parked unchecked: %s", rx_id, _describe(error))
        finding = checks_failed(type(error).__name__)
        with self._sessions.begin() as session:
            state = session.scalar(
                select(Prescription.state).where(Prescription.id == rx_id).with_for_update()
            )
            if state == State.RECEIVED:
                _move(session, [rx_id], State.RECEIVED, State.CHECKING, "checks started")
            elif state != State.CHECKING:
                return []
            _conclude(session, {rx_id: (finding,)}, "checks could not run", failure=finding)
        return [CheckOutcome(rx_id, (finding,))]


def _conclude(
    session: Session,
    results: dict[uuid.UUID, tuple[Finding, ...]],
    why: str,
    failure: Finding | None = None,
) -> None:
    """Replace the findings of prescriptions in ``checking`` (locked by the caller), move
    them to the pharmacist's queue and audit it; ``failure`` when the checks could not run."""
    now = utcnow()
    ids = list(results)
    session.execute(delete(FindingRow).where(FindingRow.prescription_id.in_(ids)))
    rows = [
        {
            "prescription_id": rx_id,
            "code": f.code,
            "severity": f.severity.value,
            "message": f.message,
            "evidence": dict(f.evidence),
            "created_at": now,
        }
        for rx_id in ids
        for f in results[rx_id]
    ]
    if rows:
        session.execute(insert(FindingRow), rows)
    _move(session, ids, State.CHECKING, State.AWAITING_REVIEW, why)
    extra = {} if failure is None else dict(failure.evidence)
    audit.append(
        session,
        [
            audit.values(
                ACTOR,
                audit.Event(
                    "prescription.check",
                    "prescription",
                    str(rx_id),
                    outcome="success" if failure is None else "failure",
                    detail={"codes": sorted({f.code for f in results[rx_id]}), **extra},
                ),
                now,
            )
            for rx_id in ids
        ],
    )


def _describe(error: BaseException) -> str:
    """The error's type and where it was raised: never its text, which may quote the
    values (patient data) a statement refused."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {Path(last.filename).name}:{last.lineno} in {last.name}"


def _link_patient(
    session: Session, rx: Prescription, newrx: NewRx, created: list[dict[str, Any]]
) -> tuple[PatientMatch | None, PatientProfile | None]:
    """Link the prescription to its patient's profile on an exact match, or to a new profile
    (its audit entry added to ``created``) when nobody shares name and birth date; weak or
    ambiguous matches stay unlinked."""
    if rx.patient_id is not None:  # linked by an earlier, interrupted run
        return PatientMatch("exact", (str(rx.patient_id),)), session.get(
            PatientProfile, rx.patient_id
        )
    key = MatchKey.of(newrx.patient)
    if key is None:
        return None, None
    profiles = {
        str(p.id): p
        for p in session.scalars(
            select(PatientProfile).where(
                PatientProfile.pharmacy_id == rx.pharmacy_id,
                PatientProfile.last_name_key == key.last,
                PatientProfile.first_name_key == key.first,
                PatientProfile.date_of_birth == key.date_of_birth,
            )
        )
    }
    match = classify(key, [(pid, _key(p)) for pid, p in profiles.items()])
    if match.kind == "exact":
        profile = profiles[match.candidates[0]]
    elif match.kind == "new":
        profile = _new_profile(session, rx, key)
        created.append(_created(profile, rx))
    else:
        return match, None
    rx.patient_id = profile.id
    return match, profile


def _key(profile: PatientProfile) -> MatchKey:
    return MatchKey(
        profile.last_name_key,
        profile.first_name_key,
        profile.date_of_birth,
        profile.gender,
        profile.postal_code,
    )


def _new_profile(session: Session, rx: Prescription, key: MatchKey) -> PatientProfile:
    profile = PatientProfile(
        pharmacy_id=rx.pharmacy_id,
        last_name_key=key.last,
        first_name_key=key.first,
        date_of_birth=key.date_of_birth,
        gender=key.gender,
        postal_code=key.postal_code,
        demographics=rx.patient,
        allergies=[],
    )
    session.add(profile)
    session.flush()
    return profile


def _created(profile: PatientProfile, rx: Prescription) -> dict[str, Any]:
    """The audit entry of a profile created for ``rx``'s patient."""
    return audit.values(
        ACTOR,
        audit.Event(
            "patient.create",
            "patient",
            str(profile.id),
            pharmacy_id=rx.pharmacy_id,
            detail={"prescription_id": str(rx.id)},
        ),
    )


def _move(session: Session, ids: list[uuid.UUID], current: State, target: State, why: str) -> None:
    """Move ``ids`` from ``current`` to ``target``, recording one transition each."""
    if not ids:
        return
    step = workflow.move(current, target, str(ACTOR), why, utcnow())
    session.execute(
        update(Prescription)
        .where(Prescription.id.in_(ids))
        .values(state=step.to_state.value, updated_at=step.at)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(PrescriptionTransition),
        [
            {
                "prescription_id": rx_id,
                "from_state": current.value,
                "to_state": target.value,
                "actor": step.actor,
                "reason": step.reason,
                "at": step.at,
            }
            for rx_id in ids
        ],
    )
