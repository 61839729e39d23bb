"""The ``NewRx`` transaction (NCPDP SCRIPT Standard 2017071).

Children in schema order: MessageRequestCode, ReturnReceipt, RequestReferenceNumber,
UrgencyIndicatorCode, AllergyOrAdverseEvent, BenefitsCoordination (0..4), Facility, Patient (1),
Pharmacy, Prescriber (1), Observation, MedicationPrescribed (1), Supervisor,
ProhibitRenewalRequest, FollowUpPrescriber. Facility, Observation and Supervisor are read by
:mod:`eprescribe.ncpdp.clinical`; BenefitsCoordination and FollowUpPrescriber are accepted in
their place without content validation.

Structure is validated first (3000). Only a structurally valid NewRx is then checked for values
that are well-formed but contradict each other or the header (2000): a quantity of zero or less,
a pharmacy NCPDPID that differs from ``Header/To`` addressed to a pharmacy, a date of birth after
the message was sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from lxml import etree

from eprescribe.ncpdp.cancelrx import CancelRx
from eprescribe.ncpdp.clinical import (
    Facility,
    Observation,
    Supervisor,
    parse_facility,
    parse_observation,
    parse_supervisor,
)
from eprescribe.ncpdp.errors import ContentInvalidError, StandardViolationError
from eprescribe.ncpdp.header import DigitalSignature, Header
from eprescribe.ncpdp.medication import (
    Code,
    Diagnosis,
    DrugDbCode,
    MedicationPrescribed,
    ProductCode,
    Quantity,
    Strength,
    parse_medication_prescribed,
)
from eprescribe.ncpdp.parties import (
    Patient,
    Pharmacy,
    Prescriber,
    parse_patient,
    parse_pharmacy,
    parse_prescriber,
)
from eprescribe.ncpdp.prescriber_response import PrescriberResponse
from eprescribe.ncpdp.sig import Sig, SigInstruction
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Children,
    Slot,
    Spec,
    boolean_value,
    date_value,
    in_code_list,
    items,
    leaf,
    opt,
    opt_text,
    req,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import DateValue, Party

__all__ = [
    "NEWRX_PATH",
    "Allergy",
    "Code",
    "Diagnosis",
    "DrugDbCode",
    "MedicationPrescribed",
    "NewRx",
    "OrderDetails",
    "Patient",
    "Pharmacy",
    "Prescriber",
    "ProductCode",
    "Quantity",
    "Sig",
    "SigInstruction",
    "Strength",
    "check_context",
    "parse_newrx",
]

NEWRX_PATH: Final = "/Message/Body/NewRx"
# A calendar date written anywhere on Earth is at most this far ahead of UTC.
_MAX_ZONE_AHEAD: Final = dt.timedelta(hours=14)

_NEWRX = Spec(
    opt("MessageRequestCode"),
    opt("ReturnReceipt"),
    opt("RequestReferenceNumber"),
    opt("UrgencyIndicatorCode"),
    opt("AllergyOrAdverseEvent"),
    opt("BenefitsCoordination", 4),
    opt("Facility"),
    req("Patient"),
    opt("Pharmacy"),
    req("Prescriber"),
    opt("Observation"),
    req("MedicationPrescribed"),
    opt("Supervisor"),
    opt("ProhibitRenewalRequest"),
    opt("FollowUpPrescriber"),
)
_ALLERGY_OR_ADVERSE_EVENT = Spec(Slot(("NoKnownAllergies", "Allergies"), 1, UNBOUNDED))
_ALLERGY = Spec(
    opt("SourceOfInformation"),
    opt("EffectiveDate"),
    opt("ExpirationDate"),
    opt("AdverseEvent"),
    opt("DrugProductCoded"),
    opt("ReactionCoded"),
    opt("SeverityCoded"),
    open=True,
)
_ALLERGY_CODED = Spec(Slot(("Text", "Qualifier", "Code"), 1, 3))


@dataclasses.dataclass(frozen=True, slots=True)
class Allergy:
    """One ``AllergyOrAdverseEvent/Allergies`` entry; every part is optional."""

    drug_text: str | None = None
    drug_code: str | None = None
    drug_code_qualifier: str | None = None
    adverse_event_text: str | None = None
    adverse_event_code: str | None = None
    reaction_text: str | None = None
    severity_text: str | None = None
    reaction_code: str | None = None
    severity_code: str | None = None
    source_of_information: str | None = None
    effective_date: DateValue | None = None
    expiration_date: DateValue | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class NewRx:
    """A validated NewRx body."""

    return_receipt: str | None
    urgency_indicator_code: str | None
    allergies: tuple[Allergy, ...]
    patient: Patient
    pharmacy: Pharmacy | None
    prescriber: Prescriber
    medication: MedicationPrescribed
    prohibit_renewal_request: bool | None
    no_known_allergies: bool = False
    facility: Facility | None = None
    observation: Observation | None = None
    supervisor: Supervisor | None = None

    def __post_init__(self) -> None:
        if self.no_known_allergies and self.allergies:
            raise ValueError("no known allergies and recorded allergies are exclusive")


@dataclasses.dataclass(frozen=True, slots=True)
class OrderDetails:
    """What the hub keeps of a NewRx besides its patient, prescriber and medication (which
    are stored, and read back, each on its own): when and by whom it was sent, its signature,
    allergies, pharmacy and flags.

    The fields are the keys of the stored JSON, in the order they were always written (those
    added later come last, with defaults, so details stored before them still read):
    ``sender`` is the message's ``Header/From`` (``Header.from_``).
    """

    sent_time: dt.datetime
    sender: Party
    digital_signature: DigitalSignature | None
    allergies: tuple[Allergy, ...]
    no_known_allergies: bool
    pharmacy: Pharmacy | None
    urgency_indicator_code: str | None
    prohibit_renewal_request: bool | None
    facility: Facility | None = None
    observation: Observation | None = None
    supervisor: Supervisor | None = None

    def newrx(
        self, patient: Patient, prescriber: Prescriber, medication: MedicationPrescribed
    ) -> NewRx:
        """The NewRx these details were kept of, with its patient, prescriber and medication
        (also kept, each on its own); ``ReturnReceipt`` asked for the reply at intake and is
        not kept."""
        return NewRx(
            return_receipt=None,
            urgency_indicator_code=self.urgency_indicator_code,
            allergies=self.allergies,
            patient=patient,
            pharmacy=self.pharmacy,
            prescriber=prescriber,
            medication=medication,
            prohibit_renewal_request=self.prohibit_renewal_request,
            no_known_allergies=self.no_known_allergies,
            facility=self.facility,
            observation=self.observation,
            supervisor=self.supervisor,
        )

    @classmethod
    def of(cls, header: Header, newrx: NewRx) -> OrderDetails:
        return cls(
            header.sent_time,
            header.from_,
            header.digital_signature,
            newrx.allergies,
            newrx.no_known_allergies,
            newrx.pharmacy,
            newrx.urgency_indicator_code,
            newrx.prohibit_renewal_request,
            newrx.facility,
            newrx.observation,
            newrx.supervisor,
        )


def parse_newrx(el: etree._Element, path: str = NEWRX_PATH) -> NewRx:
    """Validate a ``NewRx`` element (structure, then content) and return its value object."""
    children = walk(el, _NEWRX, path)
    no_known, allergies = _allergy_or_adverse_event(children, path)
    pharmacy = children.get("Pharmacy")
    facility = children.get("Facility")
    observation = children.get("Observation")
    supervisor = children.get("Supervisor")
    prohibit = opt_text(children, "ProhibitRenewalRequest", path, 5)
    # Arguments by position, in field order: keywords cost noticeably more on this hot path.
    newrx = NewRx(
        opt_text(children, "ReturnReceipt", path, 3),
        opt_text(children, "UrgencyIndicatorCode", path, 35),
        allergies,
        parse_patient(children["Patient"][0], f"{path}/Patient"),
        parse_pharmacy(pharmacy[0], f"{path}/Pharmacy") if pharmacy else None,
        parse_prescriber(children["Prescriber"][0], f"{path}/Prescriber"),
        parse_medication_prescribed(
            children["MedicationPrescribed"][0], f"{path}/MedicationPrescribed"
        ),
        None if prohibit is None else boolean_value(prohibit, f"{path}/ProhibitRenewalRequest"),
        no_known,
        parse_facility(facility[0], f"{path}/Facility") if facility else None,
        parse_observation(observation[0], f"{path}/Observation") if observation else None,
        parse_supervisor(supervisor[0], f"{path}/Supervisor") if supervisor else None,
    )
    if newrx.medication.quantity.value <= 0:
        raise ContentInvalidError(
            "quantity must be greater than zero", f"{path}/MedicationPrescribed/Quantity/Value"
        )
    return newrx


def check_context(
    newrx: NewRx | CancelRx | PrescriberResponse, header: Header, path: str = NEWRX_PATH
) -> None:
    """Reject (2000) a NewRx (or a CancelRx, which repeats its order, or a prescriber's
    response, which repeats the prescription) that contradicts its own header."""
    pharmacy = newrx.pharmacy
    # a To without a qualifier is read as a pharmacy's NCPDPID, as the intake routes it
    to_pharmacy = header.to.qualifier in ("P", None)
    if pharmacy and to_pharmacy and pharmacy.ncpdpid != header.to.value:
        raise ContentInvalidError(
            "pharmacy NCPDPID differs from the header's To",
            f"{path}/Pharmacy/Identification/NCPDPID",
        )
    born = newrx.patient.date_of_birth
    if born is not None and _after(born, header.sent_time):
        kind = "HumanPatient" if newrx.patient.kind == "human" else "NonHumanPatient"
        form = "Date" if born.datetime is None else "DateTime"
        raise ContentInvalidError(
            "date of birth after the message was sent",
            f"{path}/Patient/{kind}/DateOfBirth/{form}",
        )


def _after(value: DateValue, moment: dt.datetime) -> bool:
    if value.datetime is not None:
        return value.datetime > moment
    return value.date > (moment + _MAX_ZONE_AHEAD).date()


def _allergy_or_adverse_event(newrx: Children, path: str) -> tuple[bool, tuple[Allergy, ...]]:
    group = newrx.get("AllergyOrAdverseEvent")
    if not group:
        return False, ()
    path = f"{path}/AllergyOrAdverseEvent"
    children = walk(group[0], _ALLERGY_OR_ADVERSE_EVENT, path)
    if "NoKnownAllergies" in children:
        if len(children) > 1:
            raise StandardViolationError("unexpected element", f"{path}/Allergies")
        where = f"{path}/NoKnownAllergies"
        if len(children["NoKnownAllergies"]) > 1:
            raise StandardViolationError("element occurs too often", f"{where}[2]")
        in_code_list(leaf(children["NoKnownAllergies"][0], where, 1), {"Y"}, where)
        return True, ()
    return False, tuple(_allergy(item, where) for item, where in items(children, "Allergies", path))


def _allergy(el: etree._Element, path: str) -> Allergy:
    children = walk(el, _ALLERGY, path)
    effective = children.get("EffectiveDate")
    expiration = children.get("ExpirationDate")
    event = _coded(children, "AdverseEvent", path)
    drug = _coded(children, "DrugProductCoded", path)
    reaction = _coded(children, "ReactionCoded", path)
    severity = _coded(children, "SeverityCoded", path)
    return Allergy(
        drug_text=drug.get("Text"),
        drug_code=drug.get("Code"),
        drug_code_qualifier=drug.get("Qualifier"),
        adverse_event_text=event.get("Text"),
        adverse_event_code=event.get("Code"),
        reaction_text=reaction.get("Text"),
        severity_text=severity.get("Text"),
        reaction_code=reaction.get("Code"),
        severity_code=severity.get("Code"),
        source_of_information=opt_text(children, "SourceOfInformation", path, 35),
        effective_date=date_value(effective[0], f"{path}/EffectiveDate") if effective else None,
        expiration_date=date_value(expiration[0], f"{path}/ExpirationDate") if expiration else None,
    )


def _coded(allergy: Children, name: str, path: str) -> dict[str, str]:
    group = allergy.get(name)
    return walk_leaves(group[0], _ALLERGY_CODED, f"{path}/{name}") if group else {}
