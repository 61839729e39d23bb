"""What ``RxChangeResponse`` and ``RxRenewalResponse`` share: the prescriber's answer to a
pharmacy's request (NCPDP SCRIPT Standard 2017071).

Both bodies start with the ``Response`` choice and then repeat the prescription's blocks, in
NewRx order. Read here (the transaction modules name the choices each allows):

- ``Response``: exactly one of ``Approved``, ``ApprovedWithChanges``, ``Validated`` (change
  responses: a prior authorization or a prescriber authorization confirmed), ``Replace``
  (renewal responses: a new prescription replaces the one asked about) and ``Denied``.
  ``Approved``, ``ApprovedWithChanges`` and ``Replace`` may carry a ``Note``; ``Validated``
  ``ReasonCode`` (0..10), ``ReferenceNumber`` (the approval number) and ``Note``; ``Denied``
  ``ReasonCode`` (0..10), ``ReferenceNumber`` and ``DenialReason``. Each of these is read as an
  open element: the children named are checked in that order and for their lengths, others
  are tolerated (the full content models are NCPDP member material).
- the blocks: ``Patient`` (1) and ``Prescriber`` (1), validated exactly as in a NewRx;
  ``Pharmacy`` (0..1, as in a NewRx; when present it must name the receiving pharmacy, 2000);
  ``MedicationPrescribed`` (0..1 here, but required, 3000, by an answer that makes a
  prescription: Approved, ApprovedWithChanges, Replace), validated as in a NewRx with a
  quantity above zero (2000). The NewRx's other blocks are tolerated in their NewRx positions
  without their content being read (AllergyOrAdverseEvent, BenefitsCoordination, Facility,
  Observation, Supervisor, FollowUpPrescriber), as is the request's ``MedicationDispensed``
  (renewals) and ``MedicationRequested`` (changes) that a sender may echo; so are a
  ``MessageRequestCode`` (and ``MessageRequestSubCode``) and a ``RequestReferenceNumber``
  before ``Response``, as change responses echo their request's code.

Where the Standard's cardinality could not be confirmed from public material, the element is
accepted as optional (documented in docs/ncpdp.md): ``Pharmacy``, ``MedicationPrescribed``
for a Denied or Validated answer, ``ReasonCode`` of a denial, and the request code echo.

Which request a response answers is said in the header: ``RelatesToMessageID`` is the
request's ``MessageID`` (reference ncpdp-script.md §2: mandatory on follow-up responses; its
absence is a 3000 rejection, :func:`require_relates_to`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection
from typing import Final, Literal, TypeAlias

from lxml import etree

from eprescribe.ncpdp.errors import ContentInvalidError, StandardViolationError
from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.medication import MedicationPrescribed, parse_medication_prescribed
from eprescribe.ncpdp.parties import (
    Patient,
    Pharmacy,
    Prescriber,
    parse_patient,
    parse_pharmacy,
    parse_prescriber,
)
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Children,
    Slot,
    Spec,
    boolean_value,
    items,
    leaf,
    only_child,
    opt,
    opt_text,
    req,
    walk,
)

__all__ = [
    "DENIAL_REASONS",
    "RESPONSE_TEXT_MAX",
    "Answer",
    "PrescriberResponse",
    "ResponseKind",
    "ResponseTransaction",
    "parse_prescriber_response",
    "require_relates_to",
]

#: ``Note`` and ``DenialReason`` (an1..70 in public material; unverified)
RESPONSE_TEXT_MAX: Final = 70
#: ``ReferenceNumber`` (an1..35, as SCRIPT's other reference numbers)
REFERENCE_NUMBER_MAX: Final = 35
#: a ``ReasonCode`` (2 characters in the public code lists; 3 accepted)
REASON_CODE_MAX: Final = 3
_MAX_REASON_CODES: Final = 10

#: the denial reason codes public material names for renewal and change denials (shown to
#: the pharmacist in words; any other code is kept and shown as sent)
DENIAL_REASONS: Final = {
    "AA": "Patient unknown to the prescriber",
    "AB": "Patient never under the prescriber's care",
    "AC": "Patient no longer under the prescriber's care",
    "AD": "Refill too soon",
    "AE": "Medication never prescribed for the patient",
    "AF": "Patient should contact the prescriber first",
    "AG": "Refill not appropriate",
    "AH": "Patient has picked up the prescription",
    "AJ": "Patient has picked up a partial fill",
    "AP": "Request already responded to by other means",
}


ResponseTransaction: TypeAlias = Literal["RxChangeResponse", "RxRenewalResponse"]


class ResponseKind(enum.StrEnum):
    """The ``Response`` choice, by its element name."""

    APPROVED = "Approved"
    APPROVED_WITH_CHANGES = "ApprovedWithChanges"
    VALIDATED = "Validated"
    REPLACE = "Replace"
    DENIED = "Denied"

    @property
    def makes_prescription(self) -> bool:
        """An answer that authorises a prescription (its MedicationPrescribed)."""
        return self in _PRESCRIBING


_PRESCRIBING: Final = frozenset(
    {ResponseKind.APPROVED, ResponseKind.APPROVED_WITH_CHANGES, ResponseKind.REPLACE}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """The ``Response``: which answer, its reason codes, reference number (the prior
    authorization's approval number of a Validated answer) and text (``Note`` or
    ``DenialReason``)."""

    kind: ResponseKind
    reason_codes: tuple[str, ...] = ()
    reference_number: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if len(self.reason_codes) > _MAX_REASON_CODES:
            raise ValueError("at most 10 reason codes")


@dataclasses.dataclass(frozen=True, slots=True)
class PrescriberResponse:
    """A validated RxChangeResponse or RxRenewalResponse body (``transaction`` says which)."""

    transaction: ResponseTransaction
    answer: Answer
    patient: Patient
    pharmacy: Pharmacy | None
    prescriber: Prescriber
    #: what the prescriber authorises (as changed, for ApprovedWithChanges and Replace)
    medication: MedicationPrescribed | None
    #: the request's MessageRequestCode, when a change response echoes it
    request_code: str | None = None
    prohibit_renewal_request: bool | None = None

    def __post_init__(self) -> None:
        if self.answer.kind.makes_prescription and self.medication is None:
            raise ValueError("an approval carries the MedicationPrescribed it approves")


_BODY = Spec(
    opt("MessageRequestCode", max_len=2),
    opt("MessageRequestSubCode", UNBOUNDED),
    opt("RequestReferenceNumber"),
    req("Response"),
    opt("AllergyOrAdverseEvent"),
    opt("BenefitsCoordination", UNBOUNDED),
    opt("Facility"),
    req("Patient"),
    opt("Pharmacy"),
    req("Prescriber"),
    opt("Observation"),
    opt("MedicationDispensed"),
    opt("MedicationPrescribed"),
    opt("MedicationRequested", UNBOUNDED),
    opt("Supervisor"),
    opt("ProhibitRenewalRequest"),
    opt("FollowUpPrescriber"),
)
_NOTE_ONLY = Spec(opt("Note"), open=True)
_VALIDATED = Spec(
    Slot(("ReasonCode",), 0, _MAX_REASON_CODES),
    opt("ReferenceNumber"),
    opt("Note"),
    open=True,
)
_DENIED = Spec(
    Slot(("ReasonCode",), 0, _MAX_REASON_CODES),
    opt("ReferenceNumber"),
    opt("DenialReason"),
    open=True,
)


def parse_prescriber_response(
    el: etree._Element,
    path: str,
    transaction: ResponseTransaction,
    allowed: Collection[ResponseKind],
) -> PrescriberResponse:
    """Validate a ``transaction`` body whose ``Response`` may be one of ``allowed``."""
    children = walk(el, _BODY, path)
    answer = _answer(children["Response"][0], f"{path}/Response", allowed)
    prescribed = children.get("MedicationPrescribed")
    where = f"{path}/MedicationPrescribed"
    if answer.kind.makes_prescription and prescribed is None:
        raise StandardViolationError("required element missing", where)
    medication = parse_medication_prescribed(prescribed[0], where) if prescribed else None
    if medication is not None and medication.quantity.value <= 0:
        raise ContentInvalidError("quantity must be greater than zero", f"{where}/Quantity/Value")
    pharmacy = children.get("Pharmacy")
    prohibit = opt_text(children, "ProhibitRenewalRequest", path, 5)
    return PrescriberResponse(
        transaction=transaction,
        answer=answer,
        patient=parse_patient(children["Patient"][0], f"{path}/Patient"),
        pharmacy=parse_pharmacy(pharmacy[0], f"{path}/Pharmacy") if pharmacy else None,
        prescriber=parse_prescriber(children["Prescriber"][0], f"{path}/Prescriber"),
        medication=medication,
        request_code=opt_text(children, "MessageRequestCode", path, 2),
        prohibit_renewal_request=None
        if prohibit is None
        else boolean_value(prohibit, f"{path}/ProhibitRenewalRequest"),
    )


def _answer(el: etree._Element, path: str, allowed: Collection[ResponseKind]) -> Answer:
    choice = Spec(Slot(tuple(sorted(kind.value for kind in allowed))))
    name, outcome = only_child(el, choice, path)
    kind = ResponseKind(name)
    path = f"{path}/{name}"
    if kind is ResponseKind.DENIED:
        denied = walk(outcome, _DENIED, path)
        return Answer(
            kind,
            _reason_codes(denied, path),
            opt_text(denied, "ReferenceNumber", path, REFERENCE_NUMBER_MAX),
            opt_text(denied, "DenialReason", path, RESPONSE_TEXT_MAX),
        )
    if kind is ResponseKind.VALIDATED:
        validated = walk(outcome, _VALIDATED, path)
        return Answer(
            kind,
            _reason_codes(validated, path),
            opt_text(validated, "ReferenceNumber", path, REFERENCE_NUMBER_MAX),
            opt_text(validated, "Note", path, RESPONSE_TEXT_MAX),
        )
    note = opt_text(walk(outcome, _NOTE_ONLY, path), "Note", path, RESPONSE_TEXT_MAX)
    return Answer(kind, text=note)


def _reason_codes(children: Children, path: str) -> tuple[str, ...]:
    return tuple(
        leaf(item, where, REASON_CODE_MAX) for item, where in items(children, "ReasonCode", path)
    )


def require_relates_to(header: Header) -> str:
    """The request's MessageID a response answers; a response without one is refused."""
    if header.relates_to_message_id is None:
        raise StandardViolationError(
            "a response must name its request", "/Message/Header/RelatesToMessageID"
        )
    return header.relates_to_message_id
