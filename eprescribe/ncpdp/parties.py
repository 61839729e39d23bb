"""Patient, Pharmacy and Prescriber blocks (NCPDP SCRIPT Standard 2017071).

Shared by NewRx and the follow-up transactions that carry the same blocks. Element order is
checked where public 2017071 samples confirm it (HumanPatient: Identification, Name, Gender,
DateOfBirth, Address, CommunicationNumbers; Pharmacy: Identification, BusinessName, Address,
CommunicationNumbers; Prescriber: Identification, Name, Address, CommunicationNumbers); other
children of these blocks (Specialty, PracticeLocation, PrescriberAgent, ...) are tolerated
without content validation. In ``Identification`` the identifiers the hub uses (NCPDPID, NPI,
DEANumber, StateLicenseNumber) must be single leaves of an1..35; the order of its children is
not checked (public samples do not pin it down) and the others are kept as sent.

Addresses: a HumanPatient's and a NonVeterinarian's need AddressLine1, City, StateProvince,
PostalCode and CountryCode (reference ncpdp-script.md §4); the Address of a Pharmacy, a
Veterinarian or a NonHumanPatient is optional, and so is each of its parts (their order is still
checked). A Veterinarian needs no NPI: the Standard identifies veterinarians by state licence or
DEA number.

NPI, DEA and NCPDP numbers are kept exactly as sent; their check digits are prescription checks
(findings), not rejections.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

from lxml import etree

from eprescribe.ncpdp.errors import StandardViolationError
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Slot,
    Spec,
    child_path,
    date_value,
    flatten,
    in_code_list,
    leaf,
    only_child,
    opt,
    req,
    single,
    text,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import (
    COMMUNICATION_KINDS,
    Address,
    CommunicationNumber,
    DateValue,
    Name,
)

__all__ = [
    "GENDERS",
    "Patient",
    "Pharmacy",
    "Prescriber",
    "parse_address",
    "parse_communication_numbers",
    "parse_name",
    "parse_patient",
    "parse_pharmacy",
    "parse_prescriber",
]

GENDERS: Final = frozenset({"M", "F", "U"})
_ID_MAX: Final = 35
_NAME_MAX: Final = 35
_AFFIX_MAX: Final = 10

_NAME = Spec(
    req("LastName", _NAME_MAX),
    req("FirstName", _NAME_MAX),
    opt("MiddleName", max_len=_NAME_MAX),
    opt("Suffix", max_len=_AFFIX_MAX),
    opt("Prefix", max_len=_AFFIX_MAX),
)
_ANIMAL_NAME = Spec(
    req("LastName", _NAME_MAX),
    opt("FirstName", max_len=_NAME_MAX),
    opt("MiddleName", max_len=_NAME_MAX),
    opt("Suffix", max_len=_AFFIX_MAX),
    opt("Prefix", max_len=_AFFIX_MAX),
)
# A HumanPatient's and a NonVeterinarian's Address need every part but AddressLine2; the
# Address of a Pharmacy, a Veterinarian or a NonHumanPatient is optional, and so is each part.
_ADDRESS = Spec(
    req("AddressLine1"),
    opt("AddressLine2"),
    req("City"),
    req("StateProvince"),
    req("PostalCode"),
    req("CountryCode"),
)
_OPTIONAL_PARTS_ADDRESS = Spec(
    opt("AddressLine1"),
    opt("AddressLine2"),
    opt("City"),
    opt("StateProvince"),
    opt("PostalCode"),
    opt("CountryCode"),
)
_COMMUNICATION_NUMBERS = Spec(
    *(opt(kind) for kind in COMMUNICATION_KINDS[:-1]),
    opt("OtherTelephone", UNBOUNDED),
    open=True,
)
_TELEPHONE = Spec(req("Number"), opt("Extension"), open=True)
# Order of Identification children is not checked (public samples do not pin it down); the
# identifiers modelled here are single leaves of an1..35, the others are kept as sent.
_IDENTIFICATION = Spec(
    Slot(("NCPDPID", "NPI", "DEANumber", "StateLicenseNumber"), 0, 4, _ID_MAX), open=True
)
_PATIENT = Spec(Slot(("HumanPatient", "NonHumanPatient")))
_HUMAN_PATIENT = Spec(
    opt("Identification"),
    req("Name"),
    req("Gender"),
    req("DateOfBirth"),
    req("Address"),
    opt("CommunicationNumbers"),
    open=True,
)
_NONHUMAN_PATIENT = Spec(open=True)
_PHARMACY = Spec(
    req("Identification"),
    req("BusinessName"),
    opt("Address"),
    req("CommunicationNumbers"),
    open=True,
)
_PRESCRIBER = Spec(Slot(("NonVeterinarian", "Veterinarian")))
_PRESCRIBER_PERSON = Spec(
    req("Identification"),
    req("Name"),
    req("Address"),
    req("CommunicationNumbers"),
    open=True,
)
_VETERINARIAN = Spec(
    req("Identification"),
    req("Name"),
    opt("Address"),
    req("CommunicationNumbers"),
    open=True,
)

PatientKind = Literal["human", "nonhuman"]
PrescriberKind = Literal["non_veterinarian", "veterinarian"]


@dataclasses.dataclass(frozen=True, slots=True)
class Patient:
    """``Patient``: a HumanPatient (fully modelled) or a NonHumanPatient (what it carries).

    Everything but ``kind`` is patient data and is kept out of ``repr``. ``identifiers`` are the
    ``Identification`` children as (element name, value) pairs, e.g.
    ``("MedicalRecordIdentificationNumberEHR", "...")``.
    """

    kind: PatientKind
    name: Name | None = dataclasses.field(repr=False)
    gender: str | None = dataclasses.field(repr=False)
    date_of_birth: DateValue | None = dataclasses.field(repr=False)
    address: Address | None = dataclasses.field(repr=False)
    communication_numbers: tuple[CommunicationNumber, ...] = dataclasses.field(
        default=(), repr=False
    )
    identifiers: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.kind == "human" and None in (
            self.name,
            self.gender,
            self.date_of_birth,
            self.address,
        ):
            raise ValueError("a human patient needs name, gender, date of birth and address")


@dataclasses.dataclass(frozen=True, slots=True)
class Pharmacy:
    """``Pharmacy``: the pharmacy the prescription is addressed to (its address, and each part
    of it, is optional)."""

    ncpdpid: str
    npi: str
    business_name: str
    communication_numbers: tuple[CommunicationNumber, ...]
    address: Address | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Prescriber:
    """``Prescriber``; ``identifiers`` keeps every ``Identification`` child as sent.

    A NonVeterinarian always has an NPI and an address. A Veterinarian has no NPI (it is
    identified by its state licence or DEA number; an NPI sent anyway is kept) and may have no
    address.
    """

    kind: PrescriberKind
    npi: str | None
    dea_number: str | None
    state_license_number: str | None
    name: Name
    address: Address | None
    communication_numbers: tuple[CommunicationNumber, ...]
    identifiers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "non_veterinarian" and (self.npi is None or self.address is None):
            raise ValueError("a non-veterinarian prescriber needs an NPI and an address")


def parse_name(el: etree._Element, path: str, *, human: bool = True) -> Name:
    """A ``Name`` (LastName, FirstName, MiddleName, Suffix, Prefix)."""
    values = walk_leaves(el, _NAME if human else _ANIMAL_NAME, path)
    get = values.get
    # Positional: keyword arguments cost noticeably more on a path taken for every message.
    return Name(
        values["LastName"], get("FirstName"), get("MiddleName"), get("Suffix"), get("Prefix")
    )


def parse_address(el: etree._Element, path: str, *, mandatory: bool = True) -> Address:
    """An ``Address``: with every part but AddressLine2 when ``mandatory`` (a HumanPatient's,
    a NonVeterinarian's), else with whichever parts were sent."""
    values = walk_leaves(el, _ADDRESS if mandatory else _OPTIONAL_PARTS_ADDRESS, path)
    get = values.get
    return Address(  # line1, city, state, postal_code, country_code, line2
        get("AddressLine1"),
        get("City"),
        get("StateProvince"),
        get("PostalCode"),
        get("CountryCode"),
        get("AddressLine2"),
    )


def parse_communication_numbers(el: etree._Element, path: str) -> tuple[CommunicationNumber, ...]:
    """``CommunicationNumbers`` in document order (which :func:`walk` checked is schema order)."""
    children = walk(el, _COMMUNICATION_NUMBERS, path)
    numbers: list[CommunicationNumber] = []
    for kind, group in children.items():
        if kind in _COMMUNICATION_NUMBERS.index:
            for position, child in enumerate(group):
                where = child_path(path, kind, position, len(group))
                numbers.append(_communication_number(kind, child, where))
    return tuple(numbers)


def _communication_number(kind: str, el: etree._Element, path: str) -> CommunicationNumber:
    if kind == "ElectronicMail":
        return CommunicationNumber(kind, leaf(el, path))
    values = walk_leaves(el, _TELEPHONE, path)
    return CommunicationNumber(kind, values["Number"], values.get("Extension"))


def _identification(el: etree._Element, path: str) -> dict[str, str]:
    return walk_leaves(el, _IDENTIFICATION, path)


def _identification_and_pairs(
    el: etree._Element, path: str
) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """The identifiers the hub uses, and every child as (name, text) pairs, in one pass.

    The named identifiers are single leaves (walk_leaves checked it), so their pair is their
    validated text; only the other children need flattening.
    """
    ids = walk_leaves(el, _IDENTIFICATION, path)
    pairs: list[tuple[str, str]] = []
    for child in el:
        name = child.tag
        if name in ids:
            pairs.append((name, ids[name]))
        else:
            pairs.extend(flatten(child, ""))
    return ids, tuple(pairs)


def _required_identifier(values: dict[str, str], name: str, path: str) -> str:
    value = values.get(name)
    if value is None:
        raise StandardViolationError("required element missing", f"{path}/{name}")
    return value


def _identifier_pairs(el: etree._Element) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for child in el for name, value in flatten(child, ""))


def parse_patient(el: etree._Element, path: str) -> Patient:
    """``Patient`` with its HumanPatient or NonHumanPatient."""
    name, child = only_child(el, _PATIENT, path)
    if name == "HumanPatient":
        return _human_patient(child, f"{path}/HumanPatient")
    return _nonhuman_patient(child, f"{path}/NonHumanPatient")


def _human_patient(el: etree._Element, path: str) -> Patient:
    children = walk(el, _HUMAN_PATIENT, path)
    numbers = children.get("CommunicationNumbers")
    identification = children.get("Identification")
    identifiers: tuple[tuple[str, str], ...] = ()
    if identification:
        identifiers = _identification_and_pairs(identification[0], f"{path}/Identification")[1]
    name = parse_name(children["Name"][0], f"{path}/Name")
    gender = text(children, "Gender", path)
    if gender not in GENDERS:
        raise StandardViolationError("value not in code list", f"{path}/Gender")
    # Arguments by position, in field order: keywords cost noticeably more on this hot path.
    return Patient(
        "human",
        name,
        gender,
        date_value(children["DateOfBirth"][0], f"{path}/DateOfBirth"),
        parse_address(children["Address"][0], f"{path}/Address"),
        parse_communication_numbers(numbers[0], f"{path}/CommunicationNumbers") if numbers else (),
        identifiers,
    )


def _nonhuman_patient(el: etree._Element, path: str) -> Patient:
    children = walk(el, _NONHUMAN_PATIENT, path)
    name = single(children, "Name", path)
    gender = single(children, "Gender", path)
    birth = single(children, "DateOfBirth", path)
    address = single(children, "Address", path)
    numbers = single(children, "CommunicationNumbers", path)
    identification = single(children, "Identification", path)
    return Patient(
        kind="nonhuman",
        name=None if name is None else parse_name(name, f"{path}/Name", human=False),
        gender=None
        if gender is None
        else in_code_list(leaf(gender, f"{path}/Gender"), GENDERS, f"{path}/Gender"),
        date_of_birth=None if birth is None else date_value(birth, f"{path}/DateOfBirth"),
        address=None
        if address is None
        else parse_address(address, f"{path}/Address", mandatory=False),
        communication_numbers=()
        if numbers is None
        else parse_communication_numbers(numbers, f"{path}/CommunicationNumbers"),
        identifiers=() if identification is None else _identifier_pairs(identification),
    )


def parse_pharmacy(el: etree._Element, path: str) -> Pharmacy:
    """``Pharmacy``; its Identification must carry both NCPDPID and NPI."""
    children = walk(el, _PHARMACY, path)
    id_path = f"{path}/Identification"
    ids = _identification(children["Identification"][0], id_path)
    address = children.get("Address")
    return Pharmacy(  # by position, in field order
        _required_identifier(ids, "NCPDPID", id_path),
        _required_identifier(ids, "NPI", id_path),
        text(children, "BusinessName", path),
        parse_communication_numbers(
            children["CommunicationNumbers"][0], f"{path}/CommunicationNumbers"
        ),
        parse_address(address[0], f"{path}/Address", mandatory=False) if address else None,
    )


def parse_prescriber(el: etree._Element, path: str) -> Prescriber:
    """``Prescriber`` with its NonVeterinarian or Veterinarian.

    A NonVeterinarian must have an NPI and a full address. A Veterinarian is not required to
    have either: the Standard identifies veterinarians by state licence or DEA number (they
    have no NPI), and their address is optional.
    """
    element_name, child = only_child(el, _PRESCRIBER, path)
    path = f"{path}/{element_name}"
    vet = element_name == "Veterinarian"
    person = walk(child, _VETERINARIAN if vet else _PRESCRIBER_PERSON, path)
    id_path = f"{path}/Identification"
    ids, identifiers = _identification_and_pairs(person["Identification"][0], id_path)
    address = person.get("Address")
    return Prescriber(  # by position, in field order
        "veterinarian" if vet else "non_veterinarian",
        ids.get("NPI") if vet else _required_identifier(ids, "NPI", id_path),
        ids.get("DEANumber"),
        ids.get("StateLicenseNumber"),
        parse_name(person["Name"][0], f"{path}/Name"),
        None
        if address is None
        else parse_address(address[0], f"{path}/Address", mandatory=not vet),
        parse_communication_numbers(
            person["CommunicationNumbers"][0], f"{path}/CommunicationNumbers"
        ),
        identifiers,
    )
