"""Assembling a :class:`CheckContext` from what the caller has loaded: the one place that
decides how the prescribed drug is identified and which allergy entries count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from eprescribe.drugs import DrugReference, Identification
from eprescribe.ncpdp import DigitalSignature, MedicationPrescribed, NewRx

from .base import ActiveMedication, CheckContext, ExpiryRules, PatientMatch

RXNORM_QUALIFIERS = frozenset({"SCD", "SBD", "GPCK", "BPCK"})


def identify(reference: DrugReference, medication: MedicationPrescribed) -> Identification:
    """By NDC (ProductCode qualified ND), then RxNorm code, then the description."""
    code = medication.product_code
    ndc = code.code if code is not None and code.qualifier == "ND" else None
    db_code = medication.drug_db_code
    rxcui = db_code.code if db_code is not None and db_code.qualifier in RXNORM_QUALIFIERS else None
    return reference.identify(ndc, rxcui, medication.drug_description)


def allergy_texts(newrx: NewRx, profile: Iterable[str] = ()) -> tuple[str, ...]:
    """The allergy entries to check against: the message's drug allergies and the profile's."""
    sent = (a.drug_text for a in newrx.allergies if a.drug_text)
    return tuple(dict.fromkeys([*sent, *profile]))  # ordered, without repeats


def build_context(
    newrx: NewRx,
    received_at: dt.datetime,
    *,
    signature: DigitalSignature | None = None,
    reference: DrugReference | None = None,
    active: tuple[ActiveMedication, ...] = (),
    profile_allergies: Iterable[str] = (),
    patient_match: PatientMatch | None = None,
    state: str | None = None,
    expiry: ExpiryRules | None = None,
    prescriber_order_number: str | None = None,
    same_order: tuple[str, ...] = (),
    pending_omitted: int = 0,
) -> CheckContext:
    return CheckContext(
        newrx=newrx,
        received_at=received_at,
        signature=signature,
        state=state,
        expiry=expiry or ExpiryRules(),
        reference=reference,
        identification=identify(reference, newrx.medication) if reference else None,
        active=active,
        allergies=allergy_texts(newrx, profile_allergies),
        patient_match=patient_match,
        prescriber_order_number=prescriber_order_number,
        same_order=same_order,
        pending_omitted=pending_omitted,
    )
