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
import logging
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from eprescribe import prescriptions as rules
from eprescribe.checks import (
    ActiveMedication,
    CheckContext,
    ExpiryRules,
    Finding,
    build_context,
    checks_failed,
    identify,
    related_prescriptions,
    run_checks,
    supply_ends,
)
from eprescribe.drugs import Drug, DrugReference
from eprescribe.ncpdp import MedicationPrescribed, from_json
from eprescribe.workflow import ACCEPTED, PENDING, State

from .. import audit
from ..db import sync_engine
from ..db.models import utcnow
from ..patients import directory
from ..prescriptions import store
from ..prescriptions.expiry import load_expiry_rules
from ..prescriptions.models import Prescription
from ..prescriptions.receipt import Receipts
from ..settings import Settings
from .failures import is_transient

log = logging.getLogger(__name__)
ACTOR = audit.Actor("system", "checks")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    prescription_id: uuid.UUID
    findings: tuple[Finding, ...]
    #: when the prescription was received (for the check latency); None when parked
    received_at: dt.datetime | None = None
    #: its checks could not run: it went to the queue with CHECKS_FAILED
    parked: bool = False


#: the most earlier copies of one order a DUPLICATE_ORDER finding names
SAME_ORDER_LISTED = 20
#: the most pending prescriptions of one patient a prescription is compared with (the latest);
#: a PICTURE_INCOMPLETE finding says when there were more
PENDING_COMPARED = 50
#: passes after a chunk that check again what it made stale (the sweep takes the rest)
RECHECK_PASSES = 2
#: the fewest checks again a chunk may run, whatever its size
RECHECK_BUDGET = 16
#: the identified drugs a checker keeps (then it starts again)
DRUGS_REMEMBERED = 10_000


class Checker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        reference: DrugReference,
        expiry: ExpiryRules | None = None,
        receipts: Receipts | None = None,
    ) -> None:
        self._sessions = sessions
        self._reference = reference
        self._expiry = expiry or ExpiryRules()
        #: EPCS on receipt: verifies practitioners' signatures, archives controlled records
        self._receipts = receipts
        #: the drugs of the patients' other prescriptions, by what identifies them: a
        #: picture names the same few drugs again and again, and identifying one costs tens of
        #: microseconds (the reference is immutable, so an answer never goes stale)
        self._drugs: dict[tuple[object, ...], Drug | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Checker:
        from ..drugs import reference_with_imports

        engine = sync_engine(settings.sync_database_url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        return cls(
            sessions,
            reference_with_imports(engine),
            load_expiry_rules(settings.expiry_rules_file),
            Receipts.from_settings(settings, sessions),
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
        """Check a chunk of prescriptions (new ones, and those whose findings went stale),
        then check again, in up to :data:`RECHECK_PASSES` more passes, the prescriptions the
        chunk made stale: a new prescription changes its patient's picture, so the patient's
        others awaiting a decision learn of it (and it of them) whichever came first. These
        checks again are bounded by the chunk's size (at least :data:`RECHECK_BUDGET`), so a
        flood of scripts for one patient costs the queue a few times its own size and never
        starves other patients' checks; what is still stale is left to the sweep (and no
        approval rests on it meanwhile)."""
        outcomes, stale = self._check_chunk(ids)
        budget = max(len(ids), RECHECK_BUDGET)
        for _ in range(RECHECK_PASSES):
            if not stale or budget <= 0:
                break
            again, budget = stale[:budget], budget - len(stale[:budget])
            more, stale = self._check_chunk(again)
            outcomes.extend(more)
        return outcomes

    def _check_chunk(self, ids: Sequence[uuid.UUID]) -> tuple[list[CheckOutcome], list[uuid.UUID]]:
        """A chunk with two transactions for the whole chunk; should that fail other than
        transiently, one at a time, parking any that fail alone. Transient failures propagate
        (the task retries). Also returned: what the chunk made stale."""
        chunk = sorted(set(ids))
        try:
            return self._check_together(chunk)
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(chunk) == 1:
                return self._park(chunk[0], exc), []
            log.warning(
                "a chunk of %d checks failed (%s); checking them one at a time",
                len(chunk),
                _describe(exc),
            )
        outcomes: list[CheckOutcome] = []
        stale: list[uuid.UUID] = []
        for rx_id in chunk:
            more, also = self._check_chunk([rx_id])
            outcomes.extend(more)
            stale.extend(also)
        return outcomes, stale

    def _check_together(self, ids: list[uuid.UUID]) -> tuple[list[CheckOutcome], list[uuid.UUID]]:
        gathered, linked = self._start(ids)
        if self._receipts is not None:  # no transaction is open: it may fetch CRLs
            gathered = self._receipts.attach(gathered)
        results = {
            rx_id: (run_checks(context), basis) for rx_id, (context, basis) in gathered.items()
        }
        done, stale = self._finish(results, linked) if results else ([], [])
        for rx_id in done:
            log.info("checked prescription %s: %d findings", rx_id, len(results[rx_id][0]))
        outcomes = [
            CheckOutcome(rx_id, results[rx_id][0], gathered[rx_id][0].received_at) for rx_id in done
        ]
        return outcomes, stale

    def _start(
        self, ids: list[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, tuple[CheckContext, int | None]], dict[uuid.UUID, set[uuid.UUID]]]:
        """Start the checks (the store moves the prescriptions and links their patients in
        one transaction), then gather their contexts: drug identification, the CPU-bound
        part, runs with no lock held. Each context comes with its basis: the version of the
        patient's picture, read before the picture itself, so a change committed in between
        leaves the findings stale (checked again), never wrongly current. Also returned: the
        prescriptions this run linked, by patient (their pictures changed with them)."""
        with self._sessions.begin() as session:
            started = store.start_checks(session, ids, directory.link)
        linked: dict[uuid.UUID, set[uuid.UUID]] = {}
        for s in started:
            if s.linked and s.patient.profile is not None:
                linked.setdefault(s.patient.profile.id, set()).add(s.rx.id)
        with self._sessions() as session:
            versions = store.picture_versions(
                session, {s.patient.profile.id for s in started if s.patient.profile}
            )
            pictures = self._pictures(session, started)
            contexts = {
                s.rx.id: (
                    self._context(s, pictures.get(s.rx.id, Picture())),
                    versions.get(s.patient.profile.id) if s.patient.profile else None,
                )
                for s in started
            }
        # a patient's first script (no other open one in its picture) has nothing to carry
        return contexts, {
            patient: arrivals
            for patient, arrivals in linked.items()
            if any(_others_open(contexts[rx_id][0], arrivals) for rx_id in arrivals)
        }

    def _context(self, started: store.Started, picture: Picture) -> CheckContext:
        profile = started.patient.profile
        return build_context(
            started.newrx,
            started.received_at,
            signature=started.signature,
            reference=self._reference,
            active=picture.medications,
            profile_allergies=profile.allergies if profile else (),
            patient_match=started.patient.match,
            state=started.pharmacy_state,
            expiry=self._expiry,
            prescriber_order_number=started.prescriber_order_number,
            same_order=picture.same_order,
            pending_omitted=picture.pending_omitted,
        )

    def _pictures(
        self, session: Session, started: Sequence[store.Started]
    ) -> dict[uuid.UUID, Picture]:
        """Each started prescription's picture: its patient's other prescriptions that matter
        to the checks. One query for the whole chunk reads, for each patient, the accepted
        prescriptions (active medications, once their supply is known not to have run out),
        the latest still open (pending, not yet verified; a window function ranks and counts
        them, one more than a check compares, as a prescription is never in its own picture)
        and those that came with one of the chunk's PrescriberOrderNumbers (an order sent
        again under another MessageID, for the same drug)."""
        patients = sorted({s.patient.profile.id for s in started if s.patient.profile})
        if not patients:
            return {}
        numbers = sorted({s.prescriber_order_number for s in started if s.prescriber_order_number})
        pending = Prescription.state.in_(sorted(PENDING))
        ranked = (
            select(
                Prescription.id,
                Prescription.patient_id,
                Prescription.state,
                Prescription.medication,
                Prescription.received_at,
                Prescription.prescriber_order_number,
                Prescription.drug_description,
                pending.label("pending"),
                func.row_number()
                .over(
                    partition_by=(Prescription.patient_id, pending),
                    order_by=(Prescription.received_at.desc(), Prescription.id),
                )
                .label("rank"),
                func.count().over(partition_by=(Prescription.patient_id, pending)).label("total"),
            )
            .where(
                # a test message is never part of a patient's picture (nor ever linked)
                Prescription.patient_id.in_(patients),
                Prescription.test.is_(False),
                or_(
                    Prescription.state.in_(sorted(ACCEPTED | PENDING)),
                    Prescription.prescriber_order_number.in_(numbers) if numbers else false(),
                ),
            )
            .subquery()
        )
        rows: dict[uuid.UUID, list[_Other]] = {}
        for row in session.execute(
            select(ranked)
            .where(or_(ranked.c.pending.is_(False), ranked.c.rank <= PENDING_COMPARED + 1))
            .order_by(ranked.c.received_at, ranked.c.id)
        ):
            rows.setdefault(row.patient_id, []).append(_Other(*row))
        today = utcnow().date()
        remembered: dict[uuid.UUID, ActiveMedication | None] = {}
        pictures: dict[uuid.UUID, Picture] = {}
        for s in started:
            if s.patient.profile is None:
                continue
            others = [o for o in rows.get(s.patient.profile.id, ()) if o.id != s.rx.id]
            # the latest open ones a check compares (ranked among all, this one included)
            shown = sorted((o for o in others if o.pending), key=lambda o: o.rank)[
                :PENDING_COMPARED
            ]
            window = {o.id for o in shown}
            total = next((o.total for o in others if o.pending), 0)
            omitted = max(total - (s.rx.state in PENDING) - PENDING_COMPARED, 0)
            medications: list[ActiveMedication] = []
            same_order: list[str] = []
            for other in others:
                if (
                    s.prescriber_order_number
                    # the one this replaces or renews is not the same order sent twice
                    and other.id != s.replaces
                    and other.prescriber_order_number == s.prescriber_order_number
                    and other.drug_description == s.newrx.medication.drug_description
                    and len(same_order) < SAME_ORDER_LISTED
                ):
                    same_order.append(str(other.id))
                if other.pending and other.id not in window:
                    continue
                if other.id not in remembered:
                    remembered[other.id] = self._medication(other, today)
                if (medication := remembered[other.id]) is not None:
                    medications.append(medication)
            pictures[s.rx.id] = Picture(tuple(medications), tuple(same_order), omitted)
        return pictures

    def _medication(self, other: _Other, today: dt.date) -> ActiveMedication | None:
        """What another prescription adds to a picture: an open one, or an accepted one whose
        supply has not run out (any other is there only as an earlier copy of an order)."""
        if not other.pending and other.state not in ACCEPTED:
            return None
        medication = from_json(MedicationPrescribed, other.medication)
        if other.pending:
            return ActiveMedication(
                str(other.id),
                medication.drug_description,
                self._drug(medication),
                other.received_at,
            )
        if supply_ends(medication, other.received_at.date()) < today:
            return None
        return ActiveMedication(str(other.id), medication.drug_description, self._drug(medication))

    def _drug(self, medication: MedicationPrescribed) -> Drug | None:
        key = (medication.product_code, medication.drug_db_code, medication.drug_description)
        if key not in self._drugs:
            if len(self._drugs) >= DRUGS_REMEMBERED:
                self._drugs.clear()
            self._drugs[key] = identify(self._reference, medication).drug
        return self._drugs[key]

    def _finish(
        self,
        results: dict[uuid.UUID, tuple[tuple[Finding, ...], int | None]],
        linked: dict[uuid.UUID, set[uuid.UUID]],
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """Store the findings of those still ``checking`` and move them on, and those of
        prescriptions checked again (on a picture newer than their findings'), in one
        transaction; the others were finished by another run in the meantime. Then, in a
        short transaction of its own, carry forward the findings the new prescriptions
        cannot have changed (:func:`~server.prescriptions.store.carry_forward`: most of a
        patient's others, so a new script does not cost a check again of each), and return
        the patients' prescriptions whose findings are stale now (their pictures changed
        while this chunk ran, or the new prescriptions named them)."""
        with self._sessions.begin() as session:
            found = store.load(session, results)
            now = utcnow()
            changes = []
            for rx_id, rx in found.items():
                findings, basis = results[rx_id]
                if rx.state is State.CHECKING:
                    outcome = rules.finish_checks(rx, findings, now, basis=basis)
                elif basis is not None:
                    outcome = rules.check_again(rx, findings, basis)
                else:
                    continue
                if outcome.events:
                    changes.append(store.Change(rx, outcome))
            store.save(session, changes, [_checked(change, now) for change in changes])
        done = [change.after.id for change in changes]
        with self._sessions.begin() as session:
            self._carry_forward(session, results, linked, set(done))
            stale = store.stale(session, {rx.patient_id for rx in found.values() if rx.patient_id})
        return done, stale

    def _carry_forward(
        self,
        session: Session,
        results: dict[uuid.UUID, tuple[tuple[Finding, ...], int | None]],
        linked: dict[uuid.UUID, set[uuid.UUID]],
        done: set[uuid.UUID],
    ) -> None:
        """For each patient whose picture changed only by this run's new prescriptions, all
        of them checked here on one basis: carry forward the findings of the patient's others
        that the new ones did not name."""
        versions: dict[uuid.UUID, int] = {}
        named: set[uuid.UUID] = set()
        for patient_id, arrivals in linked.items():
            bases = {results[rx_id][1] for rx_id in arrivals if rx_id in results}
            if not arrivals <= done or len(bases) != 1:
                continue  # one was finished by another run, or they saw different pictures
            (version,) = bases
            if version is None:
                continue
            versions[patient_id] = version
            named.update(
                other
                for rx_id in arrivals
                for other in _ids(related_prescriptions(results[rx_id][0]))
            )
        store.carry_forward(session, versions, set(results) | named, PENDING_COMPARED)

    def _park(self, rx_id: uuid.UUID, error: Exception) -> list[CheckOutcome]:
        """Send a prescription whose checks cannot run to the pharmacist's queue, with a
        finding that says so; one checked before gets that finding in place of the ones its
        new picture made stale (nothing when another run has finished it meanwhile)."""
        log.warning("prescription %s parked unchecked: %s", rx_id, _describe(error))
        finding = checks_failed(type(error).__name__)
        with self._sessions.begin() as session:
            rx = store.load(session, [rx_id]).get(rx_id)
            if rx is None:
                return []
            now = utcnow()
            if rx.state in (State.RECEIVED, State.CHECKING):
                started = rules.start_checks(rx, now).rx
                outcome = rules.finish_checks(
                    started, (finding,), now, basis=rx.picture, failed=True
                )
            elif rx.findings_stale and rx.picture is not None:
                outcome = rules.check_again(rx, (finding,), rx.picture, failed=True)
            else:
                return []
            change = store.Change(rx, outcome)
            store.save(session, [change], [_checked(change, now)])
        return [CheckOutcome(rx_id, (finding,), parked=True)]


class _Other(NamedTuple):
    """Another prescription of a patient, as the picture's query reads it."""

    id: uuid.UUID
    patient_id: uuid.UUID
    state: str
    medication: Any
    received_at: dt.datetime
    prescriber_order_number: str | None
    drug_description: str
    pending: bool
    rank: int
    total: int


@dataclass(frozen=True, slots=True)
class Picture:
    """What the checks compare a prescription with, beside its patient's allergies."""

    medications: tuple[ActiveMedication, ...] = ()
    same_order: tuple[str, ...] = ()
    pending_omitted: int = 0


def _others_open(context: CheckContext, arrivals: set[uuid.UUID]) -> bool:
    """The picture holds open prescriptions other than ``arrivals`` (checked together)."""
    names = {str(rx_id) for rx_id in arrivals}
    return bool(context.pending_omitted) or any(
        m.pending_since is not None and m.prescription_id not in names for m in context.active
    )


def _ids(values: Iterable[str]) -> Iterator[uuid.UUID]:
    """The prescription IDs among evidence values (anything else names no prescription)."""
    for value in values:
        try:
            yield uuid.UUID(value)
        except ValueError:
            continue


def _checked(change: store.Change, at: dt.datetime) -> dict[str, Any]:
    """The audit entry of a prescription the checks ran on (or could not run on)."""
    (done,) = (e for e in change.outcome.events if isinstance(e, rules.ChecksDone))
    extra = dict(done.findings[0].evidence) if done.failed else {}
    if done.again:
        extra["again"] = True
    if change.after.checked_basis is not None:
        extra["basis"] = change.after.checked_basis
    return audit.values(
        ACTOR,
        audit.Event(
            "prescription.check",
            "prescription",
            str(change.after.id),
            outcome="failure" if done.failed else "success",
            detail={"codes": sorted({f.code for f in done.findings}), **extra},
        ),
        at,
    )


def _describe(error: BaseException) -> str:
    """The error's type and where it was raised: never its text, which may quote the
    values (patient data) a statement refused."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {Path(last.filename).name}:{last.lineno} in {last.name}"
