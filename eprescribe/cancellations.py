"""Which prescription a CancelRx cancels (NCPDP SCRIPT 2017071; docs/ncpdp.md "CancelRx").

A pure rule over what a store loads: the pharmacy's prescriptions that could be meant, as
:class:`Candidate` values. A CancelRx names its order in the header:

1. by ``RxReferenceNumber``, the pharmacy's own number for the prescription, when the sender
   has one from the pharmacy (the hub gives none in its replies today, so a candidate's
   ``rx_reference_number`` is ``None`` until it does, and this path finds nothing);
2. otherwise by ``PrescriberOrderNumber`` from the same sender (``Header/From``): an EHR's order
   numbers are its own, so the same number from another sender is another order.

Either way the number alone is not enough: the CancelRx repeats the order, and its patient
(normalised name and date of birth) and its drug (NDC, else the description) must be the
candidate's. A cancel that stops the wrong patient's medication is worse than one refused, so
anything less than exactly one confirmed candidate is :class:`NotFound`, and the prescriber
hears Denied and can call. A prescription replaced or renewed by a prescriber's answer (which
keeps its order number) is not a second candidate beside the one that replaced it: the cancel
means the latest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from typing import TypeAlias

from eprescribe.ncpdp.cancelrx import CancelRequest
from eprescribe.ncpdp.medication import MedicationPrescribed
from eprescribe.ncpdp.parties import Patient
from eprescribe.ncpdp.types import Party
from eprescribe.patients import normalise_name
from eprescribe.workflow import State

__all__ = ["Candidate", "Found", "Match", "NotFound", "NotFoundReason", "match"]

#: ``ProductCode/Qualifier`` of an NDC
_NDC = "ND"


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A stored prescription as the matching rule needs it."""

    prescription_id: uuid.UUID
    state: State
    #: ``Header/From`` of the NewRx it came in
    sender: Party
    prescriber_order_number: str | None
    patient_last: str | None
    patient_first: str | None
    patient_born: dt.date | None
    drug_description: str
    ndc: str | None
    #: the number the hub gave the sender for it (None: the hub gives none today)
    rx_reference_number: str | None = None
    #: the prescription it replaces or renews (a prescriber's approved change or renewal),
    #: which keeps the same order number: the later of the two is the one a cancel means
    replaces: uuid.UUID | None = None


class NotFoundReason(enum.StrEnum):
    #: the CancelRx has neither RxReferenceNumber nor PrescriberOrderNumber
    NO_NUMBER = "no_number"
    #: no candidate has the number (from this sender)
    UNKNOWN_NUMBER = "unknown_number"
    #: candidates have the number, but none has the CancelRx's patient and drug
    NOT_CONFIRMED = "not_confirmed"
    #: more than one candidate has the number, the patient and the drug
    AMBIGUOUS = "ambiguous"


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    candidate: Candidate


@dataclasses.dataclass(frozen=True, slots=True)
class NotFound:
    reason: NotFoundReason


Match: TypeAlias = Found | NotFound


def match(request: CancelRequest, candidates: Iterable[Candidate]) -> Match:
    """The one prescription ``request`` cancels among ``candidates``, or why there is none."""
    pool = tuple(candidates)
    reference, order = request.rx_reference_number, request.prescriber_order_number
    if reference is None and order is None:
        return NotFound(NotFoundReason.NO_NUMBER)
    numbered = [c for c in pool if reference is not None and c.rx_reference_number == reference]
    if not numbered and order is not None:
        numbered = [
            c
            for c in pool
            if c.prescriber_order_number == order and _same_party(c.sender, request.sender)
        ]
    if not numbered:
        return NotFound(NotFoundReason.UNKNOWN_NUMBER)
    confirmed = [c for c in numbered if _confirms(c, request)]
    if not confirmed:
        return NotFound(NotFoundReason.NOT_CONFIRMED)
    superseded = {c.replaces for c in confirmed if c.replaces is not None}
    confirmed = [c for c in confirmed if c.prescription_id not in superseded]
    if len(confirmed) > 1:
        return NotFound(NotFoundReason.AMBIGUOUS)
    return Found(confirmed[0])


def _same_party(stored: Party, sender: Party) -> bool:
    """The same identifier; the qualifier counts only when both sent one (it is optional)."""
    if stored.value != sender.value:
        return False
    return (
        stored.qualifier is None or sender.qualifier is None or stored.qualifier == sender.qualifier
    )


def _confirms(candidate: Candidate, request: CancelRequest) -> bool:
    return _same_patient(candidate, request.body.patient) and _same_drug(
        candidate, request.body.medication
    )


def _same_patient(candidate: Candidate, patient: Patient) -> bool:
    name, born = patient.name, patient.date_of_birth
    return (
        _name_key(candidate.patient_last) == _name_key(name.last if name else None)
        and _name_key(candidate.patient_first) == _name_key(name.first if name else None)
        and candidate.patient_born == (born.date if born else None)
    )


def _name_key(name: str | None) -> str:
    return normalise_name(name or "")


def _same_drug(candidate: Candidate, medication: MedicationPrescribed) -> bool:
    """The NDC when both have one (a description may be reworded, an NDC is the product);
    otherwise the description, ignoring case and spacing."""
    product = medication.product_code
    ndc = product.code if product is not None and product.qualifier == _NDC else None
    if ndc is not None and candidate.ndc is not None:
        return ndc == candidate.ndc
    return _words(medication.drug_description) == _words(candidate.drug_description)


def _words(description: str) -> list[str]:
    return description.casefold().split()
