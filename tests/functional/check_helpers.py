"""Helpers for tests of the checks: state histories, prescriptions whose checks cannot run."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from server.audit.models import AuditEvent
from server.prescriptions.models import Finding, Prescription
from server.prescriptions.models import PrescriptionTransition as Transition
from tests.conftest import Hub

#: ㎯ (SQUARE RAD OVER S SQUARED) decomposes to "rad/s2" (with a division slash): a last name
#: within the SCRIPT limit of 35 characters whose matching key would be 140 letters
EXPANDING = "\u33af" * 35


async def history(hub: Hub, rx_id: uuid.UUID) -> list[tuple[str | None, str]]:
    async with hub.db.sessions() as session:
        rows = await session.scalars(
            select(Transition).where(Transition.prescription_id == rx_id).order_by(Transition.id)
        )
        return [(t.from_state, t.to_state) for t in rows]


async def make_unreadable(hub: Hub, rx_id: uuid.UUID) -> None:
    """Leave a stored order that this version cannot read (as a laxer older version might
    have stored it): a prescription whose checks cannot run, whatever the backend."""
    async with hub.db.transaction() as session:
        rx = await session.get(Prescription, rx_id)
        assert rx is not None
        rx.patient = {"kind": "human"}  # no name, gender, birth date or address


async def assert_parked(hub: Hub, rx_id: uuid.UUID) -> None:
    """In the pharmacist's queue with one hard stop saying why, its history and audit kept."""
    async with hub.db.sessions() as session:
        [finding] = await session.scalars(select(Finding).where(Finding.prescription_id == rx_id))
        audited = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail).where(
                AuditEvent.action == "prescription.check", AuditEvent.resource_id == str(rx_id)
            )
        )
        assert [tuple(row) for row in audited] == [
            ("failure", {"codes": ["CHECKS_FAILED"], "error": "ValidationError"})
        ]
    assert (finding.code, finding.severity) == ("CHECKS_FAILED", "hard_stop")
    assert finding.message == (
        "The automatic checks could not run on this prescription; check it by hand."
    )
    assert finding.evidence == {"error": "ValidationError"}
    assert await history(hub, rx_id) == [
        (None, "received"),
        ("received", "checking"),
        ("checking", "awaiting_review"),
    ]


def someone(n: int) -> dict[str, str]:
    """The patient fields of synthetic patient number ``n``: distinct patients, for tests whose
    prescriptions must not be one patient's (whose pictures would then hold each other)."""
    letters = ""
    while True:
        n, digit = divmod(n, 26)
        letters = chr(ord("a") + digit) + letters
        if not n:
            break
    return {"patient_last": f"Testperson{letters}", "patient_first": "Sam"}
