"""Prescription checks: pure functions from a prescription and its context to findings.

Each rule family is a module with a ``CHECKS`` tuple; :data:`REGISTRY` lists them in report
order and :func:`run_checks` runs them all, so the same input always gives the same findings.
Clinical and legal problems never reject a message: they become findings for the pharmacist
(DESIGN.md, "Finding codes"). No check does I/O: the worker gathers the context first.
"""

from __future__ import annotations

from . import (
    allergy,
    consistency,
    controlled,
    dates,
    drug,
    epcs,
    interactions,
    orders,
    patient,
    prescriber,
    quantity,
)
from .base import (
    DEFAULT_DAYS_SUPPLY,
    ActiveMedication,
    Check,
    CheckContext,
    ExpiryRules,
    Finding,
    PatientMatch,
    Severity,
    related_prescriptions,
    supply_ends,
)
from .context import build_context, identify
from .unchecked import CHECKS_FAILED, checks_failed

#: identity first, then the law, then clinical checks (prescription-checks.md §1)
REGISTRY: tuple[Check, ...] = (
    *prescriber.CHECKS,
    *controlled.CHECKS,
    *epcs.CHECKS,
    *dates.CHECKS,
    *quantity.CHECKS,
    *drug.CHECKS,
    *consistency.CHECKS,
    *interactions.CHECKS,
    *orders.CHECKS,
    *allergy.CHECKS,
    *patient.CHECKS,
)


def run_checks(context: CheckContext) -> tuple[Finding, ...]:
    return tuple(finding for check in REGISTRY for finding in check(context))


__all__ = [
    "CHECKS_FAILED",
    "DEFAULT_DAYS_SUPPLY",
    "REGISTRY",
    "ActiveMedication",
    "Check",
    "CheckContext",
    "ExpiryRules",
    "Finding",
    "PatientMatch",
    "Severity",
    "build_context",
    "checks_failed",
    "identify",
    "related_prescriptions",
    "run_checks",
    "supply_ends",
]
