"""Synthetic NCPDP SCRIPT 2017071 NewRx (and CancelRx) messages for unit, functional and
benchmark tests.

Every person, organisation and identifier here is fictional: NPIs 1111111112 (prescriber) and
1000000004 (pharmacy) pass the NPI check digit, DEA number BT1234563 passes the DEA check digit,
NDC 99999000101 is a placeholder and not a product.

Typical use::

    newrx_xml()                                   # a valid, realistic NewRx (bytes)
    newrx_xml(controlled=True)                    # Schedule II, DEA number, signature indicator
    newrx_xml(structured_sig=True)                # plus a structured Sig: 1 tablet twice a day
    newrx_xml(omit=["Body/NewRx/Patient"])        # negative tests: drop an element ...
    newrx_xml(replace={"Body/NewRx/MedicationPrescribed/Quantity/Value": "abc"})  # ... change text
    newrx_xml(replace={"Header/To/@Qualifier": "X"})                             # ... an attribute
    newrx_xml(append={"Body/NewRx": "<Unexpected>1</Unexpected>"})               # ... add a child
    cancelrx_xml()                                # cancels newrx_xml()'s order (same edits)
    edit(Path("tests/fixtures/ncpdp/newrx_full.xml").read_bytes(), omit=[...])   # edit any message

Paths are relative to ``/Message`` (a leading ``/Message/`` is accepted too): element names
separated by ``/``, an optional 1-based ``[n]`` to pick among repeated siblings, and a final
``@Name`` for an attribute. Edits apply in the order omit, replace, append. For anything else,
``newrx_tree()`` returns the lxml root to change freely and ``to_bytes()`` serialises it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from eprescribe.drugs import DrugReference
from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX

__all__ = [
    "FIXTURES",
    "cancelrx_xml",
    "clinical_newrx",
    "edit",
    "newrx_tree",
    "newrx_xml",
    "response_xml",
    "stored_samples",
    "to_bytes",
    "veterinarian_without_npi",
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ncpdp"
#: the hub's own sample NewRx (``telepharm demo``)
SERVER_SAMPLE = Path(__file__).resolve().parents[2] / "server" / "samples" / "newrx.xml"

VERSION = "20170715"
_STEP = re.compile(r"([A-Za-z_][\w.-]*)(?:\[(\d+)\])?")
_CAPSULE = re.compile(r"\bcap(?:sule)?s?\b", re.IGNORECASE)


def _el(tag: str, *children: etree._Element | str | None, **attrib: str) -> etree._Element:
    """An element; a str child is its text, ``None`` children are skipped."""
    element = etree.Element(tag, attrib)
    for child in children:
        if isinstance(child, str):
            element.text = child
        elif child is not None:
            element.append(child)
    return element


def _date(tag: str, value: str) -> etree._Element:
    return _el(tag, _el("DateTime" if "T" in value else "Date", value))


def _coded(tag: str, text: str, qualifier: str, code: str) -> etree._Element:
    return _el(tag, _el("Text", text), _el("Qualifier", qualifier), _el("Code", code))


def _address(line1: str) -> etree._Element:
    return _el(
        "Address",
        _el("AddressLine1", line1),
        _el("City", "Testville"),
        _el("StateProvince", "CA"),
        _el("PostalCode", "90000"),
        _el("CountryCode", "US"),
    )


def _phone(number: str) -> etree._Element:
    return _el("CommunicationNumbers", _el("PrimaryTelephone", _el("Number", number)))


def _header(
    message_id: str, to: str, from_: str, sent_time: str, controlled: bool
) -> etree._Element:
    return _el(
        "Header",
        _el("To", to, Qualifier="P"),
        _el("From", from_, Qualifier="D"),
        _el("MessageID", message_id),
        _el("SentTime", sent_time),
        _el(
            "SenderSoftware",
            _el("SenderSoftwareDeveloper", "ExampleEHR"),
            _el("SenderSoftwareProduct", "ExampleEHR eRx"),
            _el("SenderSoftwareVersionRelease", "1.0"),
        ),
        # each order its own number, as an EHR gives them (the same number twice for one
        # patient and drug is a finding)
        _el("PrescriberOrderNumber", f"ORD-{message_id}"[:35]),
        _el("DigitalSignature", _el("DigitalSignatureIndicator", "true"), Version="1.1")
        if controlled
        else None,
    )


def _patient(last: str, first: str, gender: str, date_of_birth: str) -> etree._Element:
    return _el(
        "Patient",
        _el(
            "HumanPatient",
            _el("Name", _el("LastName", last), _el("FirstName", first)),
            _el("Gender", gender),
            _date("DateOfBirth", date_of_birth),
            _address("1 Test Street"),
            _phone("5555550100"),
        ),
    )


def _pharmacy(ncpdpid: str) -> etree._Element:
    return _el(
        "Pharmacy",
        _el("Identification", _el("NCPDPID", ncpdpid), _el("NPI", "1000000004")),
        _el("BusinessName", "TESTPHARMACY"),
        _address("3 Test Plaza"),
        _phone("5555550102"),
    )


def _prescriber(npi: str, dea: str | None) -> etree._Element:
    return _el(
        "Prescriber",
        _el(
            "NonVeterinarian",
            _el("Identification", _el("DEANumber", dea) if dea else None, _el("NPI", npi)),
            _el("Name", _el("LastName", "TESTPRESCRIBER"), _el("FirstName", "SAM")),
            _address("2 Test Avenue"),
            _phone("5555550101"),
        ),
    )


def _structured_sig(sig_text: str) -> etree._Element:
    return _el(
        "Sig",
        _el("SigText", sig_text),
        _el(
            "Instruction",
            _el(
                "DoseAdministration",
                _coded("DoseDeliveryMethod", "Take", "SNOMED", "419652001"),
                _el(
                    "Dosage",
                    _el("DoseQuantity", "1"),
                    _coded("DoseUnitOfMeasure", "tablet", "DoseUnitOfMeasure", "C48542"),
                ),
                _coded("RouteOfAdministration", "oral route", "SNOMED", "26643006"),
            ),
            _el(
                "TimingAndDuration",
                _el(
                    "Frequency",
                    _el("FrequencyNumericValue", "2"),
                    _coded("FrequencyUnits", "day", "SNOMED", "258703001"),
                ),
            ),
        ),
    )


def oral_tablets(*, controlled: bool = True) -> list[str]:
    """The bundled drug reference's oral tablets whose names fit a DrugDescription, for loads
    that vary the drug (the controlled ones left out when ``controlled`` is false)."""
    return [
        d.name
        for d in DrugReference.bundled().drugs
        if d.name.endswith("Oral Tablet")
        and len(d.name) <= DRUG_DESCRIPTION_MAX
        and (controlled or not d.dea_schedule)
    ]


def newrx_tree(
    *,
    message_id: str = "TEST-NEWRX-0001",
    to: str = "1234567",
    from_: str = "9990001",
    controlled: bool = False,
    sent_time: str = "2025-01-15T10:00:00Z",
    patient_last: str = "TESTPATIENT",
    patient_first: str = "ALEX",
    gender: str = "U",
    date_of_birth: str = "1980-01-01",
    pharmacy_ncpdpid: str | None = None,
    prescriber_npi: str = "1111111112",
    prescriber_dea: str | None = None,
    drug_description: str | None = None,
    ndc: str = "99999000101",
    quantity: str = "60",
    quantity_unit: str | None = None,
    days_supply: str = "30",
    written_date: str = "2025-01-15",
    substitutions: str = "0",
    refills: str | None = None,
    sig_text: str = "Take 1 tablet by mouth twice daily",
    note: str | None = None,
    structured_sig: bool = False,
    return_receipt: bool = False,
    urgent: bool = False,
) -> etree._Element:
    """The NewRx as an lxml tree; see :func:`newrx_xml` for the parameters."""
    schedule = _el("DEASchedule", _el("Code", "C48675")) if controlled else None
    description = drug_description or (
        "TESTOPIOID 5 MG ORAL TABLET" if controlled else "TESTDRUG 10 MG ORAL TABLET"
    )
    # the coded strength and the counting unit must agree with the description (or the
    # message contradicts itself): only the default drug's strength is known here
    strength = (
        None
        if drug_description
        else _el(
            "Strength",
            _el("StrengthValue", "5" if controlled else "10"),
            _el("StrengthForm", _el("Code", "C42998")),
            _el("StrengthUnitOfMeasure", _el("Code", "C28253")),
        )
    )
    if quantity_unit is None:
        quantity_unit = "C48480" if _CAPSULE.search(description) else "C48542"
    medication = _el(
        "MedicationPrescribed",
        _el("DrugDescription", description),
        _el(
            "DrugCoded",
            _el("ProductCode", _el("Code", ndc), _el("Qualifier", "ND")),
            strength,
            schedule,
        ),
        _el(
            "Quantity",
            _el("Value", quantity),
            _el("CodeListQualifier", "38"),
            _el("QuantityUnitOfMeasure", _el("Code", quantity_unit)),
        ),
        _el("DaysSupply", days_supply),
        _date("WrittenDate", written_date),
        _el("Substitutions", substitutions),
        _el("NumberOfRefills", refills if refills is not None else ("0" if controlled else "1")),
        _el("Note", note) if note else None,
        _structured_sig(sig_text) if structured_sig else _el("Sig", _el("SigText", sig_text)),
    )
    newrx = _el(
        "NewRx",
        _el("ReturnReceipt", "001") if return_receipt else None,
        _el("UrgencyIndicatorCode", "X") if urgent else None,
        _patient(patient_last, patient_first, gender, date_of_birth),
        _pharmacy(pharmacy_ncpdpid or to),
        _prescriber(prescriber_npi, prescriber_dea or ("BT1234563" if controlled else None)),
        medication,
    )
    return _el(
        "Message",
        _header(message_id, to, from_, sent_time, controlled),
        _el("Body", newrx),
        DatatypesVersion=VERSION,
        TransportVersion=VERSION,
        TransactionDomain="SCRIPT",
        TransactionVersion=VERSION,
        StructuresVersion=VERSION,
        ECLVersion=VERSION,
    )


def newrx_xml(
    *,
    omit: Iterable[str] = (),
    replace: Mapping[str, str] | None = None,
    append: Mapping[str, str] | None = None,
    **fields: Any,
) -> bytes:
    """A valid synthetic NewRx (UTF-8 bytes with XML declaration), then the given edits.

    Keyword fields (all optional): ``message_id``, ``to`` (pharmacy NCPDPID, also used for the
    Pharmacy block unless ``pharmacy_ncpdpid``), ``from_``, ``controlled`` (Schedule II: DEA
    schedule C48675, DEA number, zero refills, DigitalSignature indicator), ``sent_time``,
    ``patient_last``, ``patient_first``, ``gender``, ``date_of_birth`` and ``written_date`` (a
    value with ``T`` uses the DateTime form), ``prescriber_npi``, ``prescriber_dea``,
    ``drug_description`` (a given one has no coded Strength), ``ndc``, ``quantity`` (default
    60), ``quantity_unit`` (default tablets, capsules for a capsule description), ``days_supply``
    (default 30), ``substitutions``, ``refills``, ``sig_text`` (default twice daily), ``note``,
    ``structured_sig``, ``return_receipt`` and ``urgent`` (UrgencyIndicatorCode X).
    """
    root = newrx_tree(**fields)
    return to_bytes(_apply(root, omit, replace or {}, append or {}))


def cancelrx_xml(
    *,
    message_id: str = "TEST-CANCELRX-0001",
    order_number: str | None = "ORD-TEST-NEWRX-0001",
    rx_reference_number: str | None = None,
    sent_time: str = "2025-01-16T09:00:00Z",
    omit: Iterable[str] = (),
    replace: Mapping[str, str] | None = None,
    append: Mapping[str, str] | None = None,
    **fields: Any,
) -> bytes:
    """A valid synthetic CancelRx for the order :func:`newrx_xml` sends with the same
    ``fields``, then the given edits (paths under ``Body/CancelRx``).

    As EHRs send it: a new ``MessageID``, the cancelled order's ``PrescriberOrderNumber``
    (``order_number``; the default is ``newrx_xml()``'s), the pharmacy's ``RxReferenceNumber``
    when given, no ``DigitalSignature`` (a cancel dispenses nothing), and the NewRx's patient,
    pharmacy, prescriber and medication repeated in the body. ``fields`` are
    :func:`newrx_xml`'s (``controlled``, ``patient_last``, ``ndc``, ...).
    """
    root = newrx_tree(message_id=message_id, sent_time=sent_time, **fields)
    header = root.find("Header")
    assert header is not None
    for name in ("PrescriberOrderNumber", "DigitalSignature"):
        old = header.find(name)
        if old is not None:
            header.remove(old)
    # schema order: ... SenderSoftware, Mailbox, TestMessage, RxReferenceNumber,
    # TertiaryIdentifier, PrescriberOrderNumber, DigitalSignature ...
    if rx_reference_number is not None:
        header.append(_el("RxReferenceNumber", rx_reference_number))
    if order_number is not None:
        header.append(_el("PrescriberOrderNumber", order_number))
    body = root.find("Body/NewRx")
    assert body is not None
    body.tag = "CancelRx"
    for name in ("ReturnReceipt", "UrgencyIndicatorCode"):
        old = body.find(name)
        if old is not None:
            body.remove(old)
    return to_bytes(_apply(root, omit, replace or {}, append or {}))


def response_xml(
    transaction: str = "RxChangeResponse",
    answer: str = "<Approved/>",
    *,
    relates_to: str = "HUB-REQUEST-0001",
    message_id: str = "TEST-RESPONSE-0001",
    order_number: str | None = "ORD-TEST-NEWRX-0001",
    request_code: str | None = None,
    with_medication: bool = True,
    sent_time: str = "2025-01-16T09:00:00Z",
    omit: Iterable[str] = (),
    replace: Mapping[str, str] | None = None,
    append: Mapping[str, str] | None = None,
    **fields: Any,
) -> bytes:
    """A valid synthetic RxChangeResponse or RxRenewalResponse (``transaction``) answering
    the request whose MessageID is ``relates_to``, then the given edits (paths under
    ``Body/<transaction>``).

    As EHRs send it: the prescriber's ``From``, a new ``MessageID``, ``RelatesToMessageID``,
    the order's ``PrescriberOrderNumber`` (``order_number``), the ``Response`` (``answer``, an
    XML fragment such as ``<Denied><ReasonCode>AA</ReasonCode></Denied>``) first in the body,
    a change response's echoed ``MessageRequestCode`` when ``request_code``, then the
    patient, pharmacy, prescriber and (unless ``with_medication`` is false) the
    MedicationPrescribed the prescriber authorises, built from :func:`newrx_xml`'s ``fields``
    (``drug_description``, ``quantity``, ``controlled`` with its DigitalSignature, ...).
    """
    root = newrx_tree(message_id=message_id, sent_time=sent_time, **fields)
    header = root.find("Header")
    assert header is not None
    number = header.find("PrescriberOrderNumber")
    assert number is not None
    if order_number is None:
        header.remove(number)
    else:
        number.text = order_number
    found = header.find("MessageID")
    assert found is not None
    found.addnext(_el("RelatesToMessageID", relates_to))
    body = root.find("Body/NewRx")
    assert body is not None
    body.tag = transaction
    for name in ("ReturnReceipt", "UrgencyIndicatorCode"):
        old = body.find(name)
        if old is not None:
            body.remove(old)
    if not with_medication:
        medication = body.find("MedicationPrescribed")
        assert medication is not None
        body.remove(medication)
    body.insert(0, _el("Response", etree.fromstring(answer)))
    if request_code is not None:
        body.insert(0, _el("MessageRequestCode", request_code))
    return to_bytes(_apply(root, omit, replace or {}, append or {}))


def edit(
    xml: bytes,
    *,
    omit: Iterable[str] = (),
    replace: Mapping[str, str] | None = None,
    append: Mapping[str, str] | None = None,
) -> bytes:
    """Apply the same path edits as :func:`newrx_xml` to any message."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(xml, parser)
    return to_bytes(_apply(root, omit, replace or {}, append or {}))


def stored_samples() -> dict[str, bytes]:
    """Every sample NewRx the hub would store, by name: the 2017071 fixtures (not the 10.6
    one, which is refused), the hub's own sample, and synthetic variants that reach the value
    objects' other shapes (structured Sig, controlled, urgent, DateTime written date,
    non-human patient with a veterinarian)."""
    samples = {
        path.name: path.read_bytes()
        for path in sorted(FIXTURES.glob("*.xml"))
        if path.name != "newrx_10_6.xml"
    }
    samples[f"server/{SERVER_SAMPLE.name}"] = SERVER_SAMPLE.read_bytes()
    samples["structured_sig"] = newrx_xml(structured_sig=True, note="Synthetic note")
    samples["controlled_urgent"] = newrx_xml(controlled=True, urgent=True, return_receipt=True)
    samples["written_date_time"] = newrx_xml(
        written_date="2025-01-14T23:30:00-05:00", sent_time="2025-01-16T10:00:00.123456+01:00"
    )
    samples["nonhuman_veterinarian"] = _nonhuman_veterinarian()
    samples["veterinarian_without_npi"] = veterinarian_without_npi()
    samples["partial_pharmacy_address"] = newrx_xml(
        omit=["Body/NewRx/Pharmacy/Address/AddressLine1", "Body/NewRx/Pharmacy/Address/CountryCode"]
    )
    samples["no_qualifiers"] = newrx_xml(omit=["Header/To/@Qualifier", "Header/From/@Qualifier"])
    samples["clinical"] = clinical_newrx()
    samples["clinical_hold"] = clinical_newrx(do_not_fill="H", controlled=True)
    return samples


#: a compounded oral suspension for a child: what :func:`clinical_newrx` prescribes
COMPOUND_DESCRIPTION = "TESTDRUG 5 MG/ML ORAL SUSPENSION (COMPOUNDED)"


def clinical_newrx(
    *, do_not_fill: str | None = "Y", test_message: bool = False, **fields: Any
) -> bytes:
    """A NewRx carrying every clinical part the hub reads: a facility, a child's weight and
    height (Observation), a compound of two ingredients with a drug use evaluation, prior
    authorization, need-no-later-than with a reason, a delivery request, ``DoNotFill``
    (``do_not_fill``; ``None`` leaves it out) and a supervisor; ``test_message`` adds
    ``Header/TestMessage`` 1. Other ``fields`` as for :func:`newrx_tree`."""
    fields.setdefault("drug_description", COMPOUND_DESCRIPTION)
    fields.setdefault("date_of_birth", "2019-03-02")
    fields.setdefault("quantity_unit", "C28254")
    fields.setdefault("quantity", "150")
    fields.setdefault("sig_text", "Give 5 mL by mouth twice daily")
    root = newrx_tree(**fields)
    header, _ = _resolve(root, "Header")
    if test_message:
        software, _ = _resolve(header, "SenderSoftware")
        software.addnext(_el("TestMessage", "1"))
    newrx, _ = _resolve(root, "Body/NewRx")
    patient, _ = _resolve(newrx, "Patient")
    patient.addprevious(
        _el(
            "Facility",
            _el("Identification", _el("NPI", "1000000004")),
            _el("FacilityName", "TEST CARE HOME"),
            _address("4 Test Lane"),
            _phone("5555550104"),
            _el("FacilityUnit", "B"),
            _el("Room", "12"),
            _el("Bed", "2"),
        )
    )
    medication, _ = _resolve(newrx, "MedicationPrescribed")
    medication.addprevious(
        _el(
            "Observation",
            _measurement("29463-7", "18.4", "kg", "2025-01-14"),
            _measurement("8302-2", "109", "cm", "2025-01-14"),
            _el("ObservationNotes", "Measured at the clinic visit"),
        )
    )
    refills, _ = _resolve(medication, "NumberOfRefills")
    refills.addnext(_el("PriorAuthorization", "PA-TEST-0001"))
    sig, _ = _resolve(medication, "Sig")
    sig.addprevious(_due("ER", "M0", "1B", ("99999000202", "ND", "TESTOTHERDRUG 20 MG")))
    sig.addprevious(_el("PriorAuthorizationStatus", "A"))
    trailer = [
        _el("DoNotFill", do_not_fill) if do_not_fill else None,
        _el(
            "CompoundInformation",
            _el("FinalCompoundPharmaceuticalDosageForm", "C42996"),
            _ingredient("TESTDRUG 10 MG ORAL TABLET", "99999000101", "15", "C48542"),
            _ingredient("TESTVEHICLE ORAL SUSPENSION", None, "150", "C28254"),
        ),
        _el(
            "NeedNoLaterThan",
            _el("NeededNoLaterThanDate", "2025-01-17"),
            _el("NeededNoLaterThanReason", "Discharge from the care home on Friday"),
        ),
        _el("DeliveryRequest", "FIRST FILL DELIVERY"),
    ]
    for element in reversed(trailer):
        if element is not None:
            sig.addnext(element)
    medication.addnext(
        _el(
            "Supervisor",
            _el(
                "NonVeterinarian",
                _el("Identification", _el("NPI", "1000000004")),
                _el("Name", _el("LastName", "TESTSUPERVISOR"), _el("FirstName", "KIM")),
                _address("2 Test Avenue"),
                _phone("5555550103"),
            ),
        )
    )
    return to_bytes(root)


def _measurement(loinc: str, value: str, unit: str, date: str) -> etree._Element:
    return _el(
        "Measurement",
        _el("VitalSign", loinc),
        _el("LOINCVersion", "2.61"),
        _el("Value", value),
        _el("UnitOfMeasure", unit),
        _el("UCUMVersion", "2.1"),
        _date("ObservationDate", date),
    )


def _due(reason: str, service: str, result: str, co_agent: tuple[str, str, str]) -> etree._Element:
    code, qualifier, description = co_agent
    return _el(
        "DrugUseEvaluation",
        _el("ServiceReasonCode", reason),
        _el("ProfessionalServiceCode", service),
        _el("ServiceResultCode", result),
        _el(
            "CoAgent",
            _el(
                "CoAgentCode",
                _el("Code", code),
                _el("Qualifier", qualifier),
                _el("Description", description),
            ),
        ),
        _el("ClinicalSignificanceCode", "2"),
        _el("AcknowledgementReason", "Prescriber reviewed the interaction"),
    )


def _ingredient(description: str, ndc: str | None, quantity: str, unit: str) -> etree._Element:
    return _el(
        "CompoundIngredientsLotNotUsed",
        _el(
            "CompoundIngredient",
            _el("CompoundIngredientItemDescription", description),
            _el("ItemNumber", _el("Code", ndc), _el("Qualifier", "ND")) if ndc else None,
        ),
        _el(
            "Quantity",
            _el("Value", quantity),
            _el("CodeListQualifier", "38"),
            _el("QuantityUnitOfMeasure", _el("Code", unit)),
        ),
    )


def _nonhuman_veterinarian() -> bytes:
    root = newrx_tree()
    patient, _ = _resolve(root, "Body/NewRx/Patient/HumanPatient")
    patient.tag = "NonHumanPatient"
    _apply(patient, ["Address", "Name/FirstName"], {}, {})
    prescriber, _ = _resolve(root, "Body/NewRx/Prescriber/NonVeterinarian")
    prescriber.tag = "Veterinarian"
    return to_bytes(root)


def veterinarian_without_npi(licence: str | None = "VET-CA-12345") -> bytes:
    """A NonHumanPatient (whose address lacks a country) prescribed for by a Veterinarian as the
    Standard has them: no NPI (a state licence, unless ``licence`` is None), no address."""
    root = etree.fromstring(_nonhuman_veterinarian())
    _apply(
        root,
        [
            "Body/NewRx/Prescriber/Veterinarian/Identification/NPI",
            "Body/NewRx/Prescriber/Veterinarian/Address",
        ],
        {},
        {},
    )
    if licence is not None:
        identification, _ = _resolve(root, "Body/NewRx/Prescriber/Veterinarian/Identification")
        identification.append(_el("StateLicenseNumber", licence))
    patient, _ = _resolve(root, "Body/NewRx/Patient/NonHumanPatient")
    patient.insert(3, _address("4 Test Farm"))
    _apply(root, ["Body/NewRx/Patient/NonHumanPatient/Address/CountryCode"], {}, {})
    return to_bytes(root)


def to_bytes(root: etree._Element) -> bytes:
    """Serialise a message the way EHRs usually send it (declaration, indented UTF-8)."""
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _apply(
    root: etree._Element,
    omit: Iterable[str],
    replace: Mapping[str, str],
    append: Mapping[str, str],
) -> etree._Element:
    for path in omit:
        element, attribute = _resolve(root, path)
        if attribute is not None:
            del element.attrib[attribute]
        else:
            parent = element.getparent()
            assert parent is not None, "cannot omit the root"
            parent.remove(element)
    for path, value in replace.items():
        element, attribute = _resolve(root, path)
        if attribute is not None:
            element.set(attribute, value)
        else:
            element.text = value
    for path, fragment in append.items():
        element, _ = _resolve(root, path)
        element.append(etree.fromstring(fragment))
    return root


def _resolve(root: etree._Element, path: str) -> tuple[etree._Element, str | None]:
    """The element (and attribute name) a sample path points to."""
    steps = [step for step in path.removeprefix("/").removeprefix("Message").split("/") if step]
    attribute = steps.pop()[1:] if steps and steps[-1].startswith("@") else None
    element = root
    for step in steps:
        match = _STEP.fullmatch(step)
        assert match is not None, f"bad path step {step!r}"
        name, index = match.group(1), int(match.group(2) or 1)
        candidates = [child for child in element if child.tag == name]
        assert len(candidates) >= index, f"{path}: no {step} under {element.tag}"
        element = candidates[index - 1]
    return element, attribute
