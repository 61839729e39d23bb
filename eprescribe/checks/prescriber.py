"""Prescriber identity: NPI, DEA number, a veterinarian's licence (prescription-checks.md §2)."""

from __future__ import annotations

from collections.abc import Iterator

from eprescribe.identifiers import dea_name_mismatch, dea_valid, npi_valid

from .base import SCHEDULE_NAMES, Check, CheckContext, Finding, Severity


def npi(context: CheckContext) -> Iterator[Finding]:
    # a veterinarian has no NPI (the Standard identifies them by state licence): nothing to check
    # unless one was sent anyway; a non-veterinarian always has one (the parser requires it)
    value = context.newrx.prescriber.npi
    if value is not None and not npi_valid(value):
        yield Finding(
            "NPI_INVALID",
            Severity.HARD_STOP,
            "The prescriber's NPI is not a valid NPI (10 digits with a Luhn check digit).",
            {"npi": value},
        )


def dea_number(context: CheckContext) -> Iterator[Finding]:
    prescriber = context.newrx.prescriber
    dea = prescriber.dea_number
    if dea is None:
        return
    if not dea_valid(dea):
        # a controlled substance needs a valid registration; on any other drug a wrong DEA
        # number (some EHRs send one on every order) is worth a look, not a refusal
        yield Finding(
            "DEA_INVALID",
            Severity.HARD_STOP if context.controlled else Severity.WARNING,
            "The prescriber's DEA number is malformed or fails its check digit."
            + ("" if context.controlled else " The drug is not controlled."),
            {"dea_number": dea},
        )
    elif dea_name_mismatch(dea, prescriber.name.last):
        yield Finding(
            "DEA_NAME_MISMATCH",
            Severity.WARNING,
            "The DEA number's second letter is not the prescriber's last-name initial.",
            {"dea_number": dea, "last_name": prescriber.name.last},
        )


def dea_required(context: CheckContext) -> Iterator[Finding]:
    if context.controlled and not context.newrx.prescriber.dea_number:
        yield Finding(
            "DEA_REQUIRED",
            Severity.HARD_STOP,
            f"A {SCHEDULE_NAMES[context.schedule or '']} prescription needs the prescriber's "
            "DEA number, and none was sent.",
            {"schedule": SCHEDULE_NAMES[context.schedule or ""]},
        )


def veterinarian_licence(context: CheckContext) -> Iterator[Finding]:
    """A veterinarian is identified by state licence (or DEA number), not by NPI: one who sent
    neither leaves the pharmacist nothing to verify the prescriber by."""
    prescriber = context.newrx.prescriber
    if prescriber.kind != "veterinarian" or prescriber.state_license_number:
        return
    if prescriber.dea_number or prescriber.npi:
        return
    yield Finding(
        "VET_LICENSE_MISSING",
        Severity.WARNING,
        "The veterinarian sent no state licence number (nor a DEA number) to verify them by.",
        {"prescriber_kind": prescriber.kind},
    )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (npi, dea_number, dea_required, veterinarian_licence)
