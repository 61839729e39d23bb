"""Build check contexts from synthetic NewRx messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from eprescribe.checks import (
    ActiveMedication,
    CheckContext,
    ExpiryRules,
    Finding,
    PatientMatch,
    build_context,
    run_checks,
)
from eprescribe.drugs import DrugReference
from eprescribe.ncpdp import NewRx, parse_message
from tests.support.script_samples import newrx_xml

RECEIVED = dt.datetime(2025, 1, 15, 18, 0, tzinfo=dt.UTC)


REFERENCE = DrugReference.bundled()


def context(
    *,
    received: dt.datetime = RECEIVED,
    with_reference: bool = False,
    state: str | None = None,
    expiry: ExpiryRules | None = None,
    omit: tuple[str, ...] = (),
    replace: Mapping[str, str] | None = None,
    **message: Any,
) -> CheckContext:
    """A context for a synthetic NewRx; ``with_reference`` identifies the drug in the bundled
    drug reference (the sample's TESTDRUG is not in it)."""
    parsed = parse_message(newrx_xml(omit=omit, replace=replace, **message))
    assert isinstance(parsed.body, NewRx)
    return build_context(
        parsed.body,
        received,
        signature=parsed.header.digital_signature,
        reference=REFERENCE if with_reference else None,
        state=state,
        expiry=expiry,
    )


def codes(ctx: CheckContext) -> list[str]:
    return [f.code for f in run_checks(ctx)]


def finding(ctx: CheckContext, code: str) -> Finding:
    found = [f for f in run_checks(ctx) if f.code == code]
    assert len(found) == 1, [f.code for f in run_checks(ctx)]
    return found[0]


def active(description: str, prescription_id: str = "rx-active-1") -> ActiveMedication:
    """An active medication of the patient, identified in the bundled reference (``drug`` is
    None when the reference does not know the description)."""
    return ActiveMedication(prescription_id, description, REFERENCE.by_description(description))


def with_patient(
    ctx: CheckContext,
    *,
    active: tuple[ActiveMedication, ...] = (),
    allergies: tuple[str, ...] = (),
    patient_match: PatientMatch | None = None,
) -> CheckContext:
    """The same context with the patient's active medications, allergies and profile match."""
    return dataclasses.replace(ctx, active=active, allergies=allergies, patient_match=patient_match)


def findings(ctx: CheckContext, code: str) -> list[Finding]:
    return [f for f in run_checks(ctx) if f.code == code]
