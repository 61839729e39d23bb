"""Running the checks for one prescription: idempotent, safe to run twice at once.

Two short transactions around the pure checks: the first moves ``received`` to ``checking``,
the second replaces the findings and moves ``checking`` to ``awaiting_review`` only if the
prescription is still ``checking``. A redelivered or duplicated task therefore either finds
nothing to do or finishes a check that never completed; a prescription never ends with two
sets of findings.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from eprescribe import workflow
from eprescribe.checks import CheckContext, Finding, run_checks
from eprescribe.ncpdp import NewRx, parse_message
from eprescribe.workflow import State

from ..db import json_dumps, use_sqlite_transactions
from ..db.models import AuditEvent, InboundMessage, Prescription, PrescriptionTransition, utcnow
from ..db.models import Finding as FindingRow
from ..settings import Settings

log = logging.getLogger(__name__)
ACTOR = "system:checks"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    prescription_id: uuid.UUID
    findings: tuple[Finding, ...]


class Checker:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @classmethod
    def from_settings(cls, settings: Settings) -> Checker:
        return cls(sessionmaker(sync_engine(settings.sync_database_url), expire_on_commit=False))

    def close(self) -> None:
        engine = self._sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def check(self, rx_id: uuid.UUID) -> CheckOutcome | None:
        """Check one prescription; None when there was nothing (left) to do."""
        loaded = self._start(rx_id)
        if loaded is None:
            return None
        findings = run_checks(loaded)
        if not self._finish(rx_id, findings):
            return None
        log.info("checked prescription %s: %d findings", rx_id, len(findings))
        return CheckOutcome(rx_id, findings)

    def _start(self, rx_id: uuid.UUID) -> CheckContext | None:
        with self._sessions.begin() as session:
            row = session.execute(
                select(Prescription.state, InboundMessage.raw, InboundMessage.received_at)
                .join(InboundMessage, Prescription.inbound_message_id == InboundMessage.id)
                .where(Prescription.id == rx_id)
                .with_for_update(of=Prescription)
            ).one_or_none()
            if row is None or row.state not in (State.RECEIVED, State.CHECKING):
                return None
            if row.state == State.RECEIVED:
                _move(session, rx_id, State.RECEIVED, State.CHECKING, "checks started")
        return _context(row.raw, row.received_at)

    def _finish(self, rx_id: uuid.UUID, findings: tuple[Finding, ...]) -> bool:
        with self._sessions.begin() as session:
            state = session.scalar(
                select(Prescription.state).where(Prescription.id == rx_id).with_for_update()
            )
            if state != State.CHECKING:
                return False  # another run finished first
            now = utcnow()
            session.execute(delete(FindingRow).where(FindingRow.prescription_id == rx_id))
            if findings:
                session.execute(
                    insert(FindingRow),
                    [
                        {
                            "prescription_id": rx_id,
                            "code": f.code,
                            "severity": f.severity.value,
                            "message": f.message,
                            "evidence": dict(f.evidence),
                            "created_at": now,
                        }
                        for f in findings
                    ],
                )
            summary = f"checks done: {len(findings)} findings"
            _move(session, rx_id, State.CHECKING, State.AWAITING_REVIEW, summary)
            session.execute(
                insert(AuditEvent).values(
                    at=now,
                    actor=ACTOR,
                    pharmacy_id=None,
                    action="prescription.check",
                    resource_type="prescription",
                    resource_id=str(rx_id),
                    outcome="success",
                    ip=None,
                    detail={"codes": sorted({f.code for f in findings})},
                )
            )
        return True


def _context(raw: bytes, received_at: dt.datetime) -> CheckContext:
    message = parse_message(raw)  # it parsed at intake; the same bytes parse the same way
    assert isinstance(message.body, NewRx)
    return CheckContext(
        newrx=message.body, received_at=received_at, signature=message.header.digital_signature
    )


def _move(session: Session, rx_id: uuid.UUID, current: State, target: State, why: str) -> None:
    step = workflow.move(current, target, ACTOR, why, utcnow())
    session.execute(
        update(Prescription)
        .where(Prescription.id == rx_id)
        .values(state=step.to_state.value, updated_at=step.at)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(PrescriptionTransition).values(
            prescription_id=rx_id,
            from_state=current.value,
            to_state=target.value,
            actor=step.actor,
            reason=step.reason,
            at=step.at,
        )
    )


def sync_engine(url: str) -> Engine:
    """A blocking engine for workers, configured like the hub's (hidden parameters, JSON)."""
    engine = create_engine(
        url, hide_parameters=True, json_serializer=json_dumps, pool_pre_ping=True
    )
    if engine.dialect.name == "sqlite":
        use_sqlite_transactions(engine, "BEGIN IMMEDIATE")
    return engine
