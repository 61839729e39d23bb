"""Writing SCRIPT 2017071 elements from the hub's value objects (NCPDP SCRIPT Standard 2017071).

The blocks every outbound transaction shares (envelope, Header, Patient, Pharmacy, Prescriber,
MedicationPrescribed) are written here, each in the order the parsers of
:mod:`eprescribe.ncpdp.parties`, :mod:`eprescribe.ncpdp.medication` and
:mod:`eprescribe.ncpdp.header` check, so that every message the hub sends parses again with
:func:`~eprescribe.ncpdp.message.parse_message` (its tests build, parse and compare).

The hub is strict in what it sends. Text goes into elements of the Standard's ``an`` type, so:

- names, addresses and directions (:func:`an_text`) lose their accents (``é`` becomes ``e``)
  and are refused if anything else is not printable ASCII, if they are empty, or if they are
  longer than the element allows: truncating a name would make it name someone else;
- identifiers, numbers and codes are refused on the same grounds but never transliterated
  (``exact``): they must match as they are;
- free text where the Standard's meaning survives shortening (a ``Note``, a ``DenialReason``;
  :func:`free_text`) is transliterated the same way, other non-ASCII characters become ``?``, and
  it is truncated with ``...``.

A refusal is an :class:`OutboundError` naming the element's XPath, never its value (values may be
patient data). lxml escapes ``&``, ``<`` and ``>``; control characters never reach it.

Not written yet: a NonHumanPatient (refused), the structured Sig (its ``SigText`` is sent) and
the clinical parts of MedicationPrescribed (DoNotFill, CompoundInformation, PriorAuthorization,
DrugUseEvaluation, ...), which the prescriber has in its own record of the prescription.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from lxml import etree

from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.medication import (
    Diagnosis,
    DrugDbCode,
    MedicationPrescribed,
    ProductCode,
    Quantity,
    Strength,
)
from eprescribe.ncpdp.parties import Patient, Pharmacy, Prescriber
from eprescribe.ncpdp.replies import SCRIPT_VERSION, clean_text, format_sent_time
from eprescribe.ncpdp.sig import SIG_TEXT_MAX
from eprescribe.ncpdp.types import (
    DRUG_DESCRIPTION_MAX,
    IDENTIFIER_MAX,
    PARTY_VALUE_MAX,
    Address,
    CommunicationNumber,
    DateValue,
    Name,
    Party,
    SenderSoftware,
)

__all__ = [
    "NAME_MAX",
    "NOTE_MAX",
    "OutboundError",
    "add_leaf",
    "an_text",
    "count",
    "free_text",
    "message_document",
    "write_drug_coded",
    "write_medication_prescribed",
    "write_patient",
    "write_pharmacy",
    "write_prescriber",
    "write_quantity",
    "write_sig",
]

Element = etree._Element

#: ``LastName``, ``FirstName``, ``MiddleName`` (an1..35), as the parser checks them.
NAME_MAX: Final = 35
#: ``Suffix``, ``Prefix`` (an1..10).
AFFIX_MAX: Final = 10
#: ``MedicationPrescribed/Note`` (an1..210).
NOTE_MAX: Final = 210
#: Address parts, business name and communication numbers: not in the reference; these are
#: the lengths public 2017071 material gives (unverified), the shortest seen where they differ.
ADDRESS_LINE_MAX: Final = 40
ADDRESS_PART_MAX: Final = 35
BUSINESS_NAME_MAX: Final = 70
NUMBER_MAX: Final = 80
_VERSION_ATTRIBUTES: Final = (
    "DatatypesVersion",
    "TransportVersion",
    "TransactionDomain",
    "TransactionVersion",
    "StructuresVersion",
    "ECLVersion",
)
_ELEMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}", re.ASCII)
_NO_OFFSET: Final = dt.timedelta(0)


class OutboundError(ValueError):
    """A value the hub will not put into a message it sends; ``xpath`` names the element."""

    def __init__(self, detail: str, xpath: str) -> None:
        super().__init__(f"{detail}: {xpath}")
        self.detail = detail
        self.xpath = xpath


# --- text -----------------------------------------------------------------------------------


def _transliterate(value: str) -> str:
    """Accented letters lose their accents; everything else is left for the caller to judge."""
    if value.isascii():
        return value
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch)
    )


def an_text(value: str, limit: int, xpath: str, *, exact: bool = False) -> str:
    """``value`` as an ``an`` element's text: transliterated, else refused; never shortened.

    ``exact`` values (identifiers, numbers, codes) are not transliterated either: the hub and
    the prescriber must match them as they are (a ``MessageID`` comes back as a
    ``RelatesToMessageID``), so one with a non-ASCII character is refused.
    """
    text = (value if exact else _transliterate(value)).strip()
    if not text:
        raise OutboundError("empty value", xpath)
    if not (text.isascii() and text.isprintable()):
        raise OutboundError("not printable ASCII", xpath)
    if len(text) > limit:
        raise OutboundError(f"longer than {limit} characters", xpath)
    return text


def free_text(value: str, limit: int) -> str:
    """Free text shortened to ``limit`` (with ``...``), in printable ASCII; may be empty."""
    return clean_text(value, limit)


# --- elements -------------------------------------------------------------------------------


def add_leaf(parent: Element, tag: str, text: str) -> Element:
    """Append ``<tag>text</tag>`` (the text is already checked)."""
    el = etree.SubElement(parent, tag)
    el.text = text
    return el


def _an(parent: Element, tag: str, value: str, limit: int, path: str) -> None:
    add_leaf(parent, tag, an_text(value, limit, f"{path}/{tag}"))


def _opt_an(parent: Element, tag: str, value: str | None, limit: int, path: str) -> None:
    if value is not None:
        _an(parent, tag, value, limit, path)


def _id(parent: Element, tag: str, value: str, limit: int, path: str) -> None:
    add_leaf(parent, tag, an_text(value, limit, f"{path}/{tag}", exact=True))


def _opt_id(parent: Element, tag: str, value: str | None, limit: int, path: str) -> None:
    if value is not None:
        _id(parent, tag, value, limit, path)


def message_document(header: Header, transaction: Element) -> bytes:
    """The whole message: root with the six version attributes, ``Header``, ``Body``."""
    root = etree.Element("Message")
    for attribute in _VERSION_ATTRIBUTES:
        root.set(attribute, "SCRIPT" if attribute == "TransactionDomain" else SCRIPT_VERSION)
    root.append(_header(header))
    etree.SubElement(root, "Body").append(transaction)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _header(header: Header) -> Element:
    path = "/Message/Header"
    el = etree.Element("Header")
    _party(el, "To", header.to, path)
    _party(el, "From", header.from_, path)
    _id(el, "MessageID", header.message_id, IDENTIFIER_MAX, path)
    _opt_id(el, "RelatesToMessageID", header.relates_to_message_id, IDENTIFIER_MAX, path)
    if header.sent_time.utcoffset() != _NO_OFFSET:
        raise OutboundError("SentTime must be in UTC", f"{path}/SentTime")
    add_leaf(el, "SentTime", format_sent_time(header.sent_time))
    _software(el, header.sender_software, f"{path}/SenderSoftware")
    if header.test_message:
        add_leaf(el, "TestMessage", "true")
    _opt_id(el, "RxReferenceNumber", header.rx_reference_number, IDENTIFIER_MAX, path)
    _opt_id(el, "PrescriberOrderNumber", header.prescriber_order_number, IDENTIFIER_MAX, path)
    if header.digital_signature is not None:
        # Only the prescriber signs (NewRx, RxChangeResponse, RxRenewalResponse): what the hub
        # sends carries no signature.
        raise OutboundError("the hub does not sign what it sends", f"{path}/DigitalSignature")
    return el


def _party(parent: Element, tag: str, party: Party, path: str) -> None:
    el = add_leaf(parent, tag, an_text(party.value, PARTY_VALUE_MAX, f"{path}/{tag}", exact=True))
    if party.qualifier is not None:
        el.set("Qualifier", party.qualifier)


def _software(parent: Element, software: SenderSoftware, path: str) -> None:
    el = etree.SubElement(parent, "SenderSoftware")
    _an(el, "SenderSoftwareDeveloper", software.developer, IDENTIFIER_MAX, path)
    _an(el, "SenderSoftwareProduct", software.product, IDENTIFIER_MAX, path)
    _an(el, "SenderSoftwareVersionRelease", software.version, IDENTIFIER_MAX, path)


def _name(parent: Element, name: Name, path: str) -> None:
    el = etree.SubElement(parent, "Name")
    path = f"{path}/Name"
    _an(el, "LastName", name.last, NAME_MAX, path)
    if name.first is None:
        raise OutboundError("required element missing", f"{path}/FirstName")
    _an(el, "FirstName", name.first, NAME_MAX, path)
    _opt_an(el, "MiddleName", name.middle, NAME_MAX, path)
    _opt_an(el, "Suffix", name.suffix, AFFIX_MAX, path)
    _opt_an(el, "Prefix", name.prefix, AFFIX_MAX, path)


def _address(parent: Element, address: Address, path: str) -> None:
    el = etree.SubElement(parent, "Address")
    path = f"{path}/Address"
    _opt_an(el, "AddressLine1", address.line1, ADDRESS_LINE_MAX, path)
    _opt_an(el, "AddressLine2", address.line2, ADDRESS_LINE_MAX, path)
    _opt_an(el, "City", address.city, ADDRESS_PART_MAX, path)
    _opt_an(el, "StateProvince", address.state, ADDRESS_PART_MAX, path)
    _opt_an(el, "PostalCode", address.postal_code, ADDRESS_PART_MAX, path)
    _opt_an(el, "CountryCode", address.country_code, ADDRESS_PART_MAX, path)


def _communication_numbers(
    parent: Element, numbers: tuple[CommunicationNumber, ...], path: str
) -> None:
    path = f"{path}/CommunicationNumbers"
    if not numbers:
        raise OutboundError("required element missing", path)
    el = etree.SubElement(parent, "CommunicationNumbers")
    for number in numbers:  # kept in document order, which the parser checked is schema order
        where = f"{path}/{number.kind}"
        if number.kind == "ElectronicMail":
            _id(el, number.kind, number.number, NUMBER_MAX, path)
            continue
        phone = etree.SubElement(el, number.kind)
        _id(phone, "Number", number.number, NUMBER_MAX, where)
        _opt_id(phone, "Extension", number.extension, NUMBER_MAX, where)


def _date(parent: Element, tag: str, value: DateValue) -> None:
    el = etree.SubElement(parent, tag)
    if value.datetime is None:
        add_leaf(el, "Date", value.date.isoformat())
    else:
        add_leaf(el, "DateTime", format_sent_time(value.datetime))


def _pairs(parent: Element, pairs: Iterable[tuple[str, str]], path: str) -> None:
    """(relative path, text) pairs as kept by the parsers, written back as elements.

    A step that continues a path reuses the element the previous pair opened, so that
    ``A/B`` then ``A/C`` become one ``A`` with ``B`` and ``C``.
    """
    for name, value in pairs:
        steps = name.split("/")
        el = parent
        for position, step in enumerate(steps):
            if _ELEMENT_NAME.fullmatch(step) is None:
                raise OutboundError("not an element name", path)
            last = el[-1] if len(el) else None
            final = position == len(steps) - 1
            if not final and last is not None and last.tag == step:
                el = last
            else:
                el = etree.SubElement(el, step)
        el.text = an_text(value, IDENTIFIER_MAX, f"{path}/{name}", exact=True)


def write_patient(parent: Element, patient: Patient, path: str) -> None:
    """``Patient/HumanPatient`` (a NonHumanPatient is refused: not sent in this slice)."""
    path = f"{path}/Patient/HumanPatient"
    if patient.kind != "human":
        raise OutboundError("a non-human patient is not sent yet", path)
    name, gender, born, address = (
        patient.name,
        patient.gender,
        patient.date_of_birth,
        patient.address,
    )
    if name is None or gender is None or born is None or address is None:
        raise OutboundError("a human patient needs name, gender, birth date, address", path)
    human = etree.SubElement(etree.SubElement(parent, "Patient"), "HumanPatient")
    if patient.identifiers:
        where = f"{path}/Identification"
        _pairs(etree.SubElement(human, "Identification"), patient.identifiers, where)
    _name(human, name, path)
    _id(human, "Gender", gender, 1, path)
    _date(human, "DateOfBirth", born)
    _address(human, address, path)
    if patient.communication_numbers:
        _communication_numbers(human, patient.communication_numbers, path)


def write_pharmacy(parent: Element, pharmacy: Pharmacy, path: str) -> None:
    """``Pharmacy``: NCPDPID and NPI, business name, address, communication numbers."""
    path = f"{path}/Pharmacy"
    el = etree.SubElement(parent, "Pharmacy")
    identification = etree.SubElement(el, "Identification")
    _id(identification, "NCPDPID", pharmacy.ncpdpid, IDENTIFIER_MAX, f"{path}/Identification")
    _id(identification, "NPI", pharmacy.npi, IDENTIFIER_MAX, f"{path}/Identification")
    _an(el, "BusinessName", pharmacy.business_name, BUSINESS_NAME_MAX, path)
    if pharmacy.address is not None:
        _address(el, pharmacy.address, path)
    _communication_numbers(el, pharmacy.communication_numbers, path)


def write_prescriber(parent: Element, prescriber: Prescriber, path: str) -> None:
    """``Prescriber``: its identifiers as the hub received them, name, address, numbers."""
    tag = "Veterinarian" if prescriber.kind == "veterinarian" else "NonVeterinarian"
    path = f"{path}/Prescriber/{tag}"
    el = etree.SubElement(etree.SubElement(parent, "Prescriber"), tag)
    pairs = prescriber.identifiers or tuple(
        (name, value)
        for name, value in (
            ("DEANumber", prescriber.dea_number),
            ("NPI", prescriber.npi),
            ("StateLicenseNumber", prescriber.state_license_number),
        )
        if value is not None
    )
    if not pairs:
        raise OutboundError("required element missing", f"{path}/Identification")
    _pairs(etree.SubElement(el, "Identification"), pairs, f"{path}/Identification")
    _name(el, prescriber.name, path)
    if prescriber.address is not None:
        _address(el, prescriber.address, path)
    _communication_numbers(el, prescriber.communication_numbers, path)


def write_drug_coded(
    parent: Element,
    product_code: ProductCode | None,
    strength: Strength | None,
    drug_db_code: DrugDbCode | None,
    dea_schedule: str | None,
    path: str,
) -> None:
    """``DrugCoded`` (nothing when there is nothing coded)."""
    if product_code is None and strength is None and drug_db_code is None and dea_schedule is None:
        return
    path = f"{path}/DrugCoded"
    el = etree.SubElement(parent, "DrugCoded")
    if product_code is not None:
        _code_and_qualifier(el, "ProductCode", product_code.code, product_code.qualifier, path)
    if strength is not None:
        part = etree.SubElement(el, "Strength")
        where = f"{path}/Strength"
        _opt_id(part, "StrengthValue", strength.value, IDENTIFIER_MAX, where)
        _opt_code(part, "StrengthForm", strength.form_code, where)
        _opt_code(part, "StrengthUnitOfMeasure", strength.unit_code, where)
    if drug_db_code is not None:
        _code_and_qualifier(el, "DrugDBCode", drug_db_code.code, drug_db_code.qualifier, path)
    _opt_code(el, "DEASchedule", dea_schedule, path)


def _code_and_qualifier(parent: Element, tag: str, code: str, qualifier: str, path: str) -> None:
    el = etree.SubElement(parent, tag)
    _id(el, "Code", code, IDENTIFIER_MAX, f"{path}/{tag}")
    _id(el, "Qualifier", qualifier, IDENTIFIER_MAX, f"{path}/{tag}")


def _opt_code(parent: Element, tag: str, code: str | None, path: str) -> None:
    if code is not None:
        _id(etree.SubElement(parent, tag), "Code", code, IDENTIFIER_MAX, f"{path}/{tag}")


def write_quantity(parent: Element, quantity: Quantity, path: str) -> None:
    """``Quantity``: value (at most 11 digits, never in exponent form), qualifier, unit."""
    path = f"{path}/Quantity"
    value = format(quantity.value, "f")
    if sum(ch.isdigit() for ch in value) > 11:
        raise OutboundError("more than 11 digits", f"{path}/Value")
    el = etree.SubElement(parent, "Quantity")
    add_leaf(el, "Value", value)
    _id(el, "CodeListQualifier", quantity.code_list_qualifier, 2, path)
    _opt_code(el, "QuantityUnitOfMeasure", quantity.unit_code, path)


def write_sig(parent: Element, sig_text: str, path: str) -> None:
    """``Sig`` with its ``SigText`` (directions are never shortened: refused if too long)."""
    _an(etree.SubElement(parent, "Sig"), "SigText", sig_text, SIG_TEXT_MAX, f"{path}/Sig")


def count(value: int, digits: int, xpath: str) -> str:
    """A non-negative integer of at most ``digits`` digits (days supply, refills)."""
    text = str(value)
    if value < 0 or len(text) > digits:
        raise OutboundError(f"not an integer of 1 to {digits} digits", xpath)
    return text


def write_medication_prescribed(
    parent: Element, medication: MedicationPrescribed, path: str
) -> None:
    """``MedicationPrescribed`` as the hub stored it (see the module docstring for what is not
    written)."""
    path = f"{path}/MedicationPrescribed"
    el = etree.SubElement(parent, "MedicationPrescribed")
    _an(el, "DrugDescription", medication.drug_description, DRUG_DESCRIPTION_MAX, path)
    write_drug_coded(
        el,
        medication.product_code,
        medication.strength,
        medication.drug_db_code,
        medication.dea_schedule,
        path,
    )
    write_quantity(el, medication.quantity, path)
    if medication.days_supply is not None:
        add_leaf(el, "DaysSupply", count(medication.days_supply, 3, f"{path}/DaysSupply"))
    _date(el, "WrittenDate", medication.written_date)
    _id(el, "Substitutions", medication.substitutions, 1, path)
    add_leaf(
        el,
        "NumberOfRefills",
        count(medication.number_of_refills, 2, f"{path}/NumberOfRefills"),
    )
    for position, diagnosis in enumerate(medication.diagnoses):
        _diagnosis(el, diagnosis, f"{path}/Diagnosis[{position + 1}]")
    if medication.note is not None and (note := free_text(medication.note, NOTE_MAX)):
        add_leaf(el, "Note", note)
    write_sig(el, medication.sig.text, path)
    _opt_id(el, "PrescriberCheckedREMS", medication.prescriber_checked_rems, IDENTIFIER_MAX, path)


def _diagnosis(parent: Element, diagnosis: Diagnosis, path: str) -> None:
    el = etree.SubElement(parent, "Diagnosis")
    _id(el, "ClinicalInformationQualifier", diagnosis.clinical_information_qualifier, 1, path)
    for tag, code in (("Primary", diagnosis.primary), ("Secondary", diagnosis.secondary)):
        if code is None:
            continue
        part = etree.SubElement(el, tag)
        _id(part, "Code", code.code, IDENTIFIER_MAX, f"{path}/{tag}")
        _id(part, "Qualifier", code.qualifier, IDENTIFIER_MAX, f"{path}/{tag}")
        if code.description is not None and (text := free_text(code.description, NOTE_MAX)):
            add_leaf(part, "Description", text)
