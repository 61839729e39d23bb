"""NewRx: every modelled element, the structured Sig, and each rejection with its XPath."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from lxml import etree

from eprescribe.ncpdp import (
    Address,
    Allergy,
    Code,
    Coded,
    CommunicationNumber,
    ContentInvalidError,
    DateValue,
    Diagnosis,
    DrugDbCode,
    Name,
    NewRx,
    ProductCode,
    Quantity,
    ScriptRejection,
    StandardViolationError,
    Strength,
    parse_message,
    to_json,
)
from tests.support.script_samples import (
    FIXTURES,
    edit,
    newrx_tree,
    newrx_xml,
    to_bytes,
    veterinarian_without_npi,
)

N = "/Message/Body/NewRx"
MED = f"{N}/MedicationPrescribed"
PATIENT = f"{N}/Patient/HumanPatient"


def newrx(document: bytes) -> NewRx:
    body = parse_message(document).body
    assert isinstance(body, NewRx)
    return body


def fixture(name: str) -> NewRx:
    return newrx((FIXTURES / name).read_bytes())


def rejection(document: bytes) -> ScriptRejection:
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    return caught.value


# --- reading --------------------------------------------------------------------------------


def test_full_fixture_top_level() -> None:
    rx = fixture("newrx_full.xml")
    assert rx.return_receipt == "001"
    assert rx.urgency_indicator_code == "X"
    assert rx.prohibit_renewal_request is False
    assert rx.no_known_allergies is False


def test_full_fixture_allergies() -> None:
    assert fixture("newrx_full.xml").allergies == (
        Allergy(
            drug_text="TESTCILLIN",
            drug_code="7980",
            drug_code_qualifier="RXN",
            adverse_event_text="Drug allergy",
            adverse_event_code="416098002",
            reaction_text="Hives",
            severity_text="Moderate",
            reaction_code="247472004",
            severity_code="6736007",
            source_of_information="P",
            effective_date=DateValue(dt.date(2010, 6, 1)),
        ),
        Allergy(drug_text="TESTSULFA", reaction_text="Rash"),
    )


def test_no_known_allergies() -> None:
    rx = fixture("newrx_controlled.xml")
    assert (rx.no_known_allergies, rx.allergies) == (True, ())


def test_full_fixture_patient() -> None:
    patient = fixture("newrx_full.xml").patient
    assert patient.kind == "human"
    assert patient.name == Name("TESTPATIENT", "ALEX", "QUINN", "JR", "MX")
    assert patient.gender == "F"
    assert patient.date_of_birth == DateValue(
        dt.date(1980, 1, 1), dt.datetime(1980, 1, 1, 8, 30, tzinfo=dt.UTC)
    )
    assert patient.address == Address(
        "1 Test Street", "Testville", "CA", "90000", "US", line2="Apt 2"
    )
    assert patient.communication_numbers == (
        CommunicationNumber("PrimaryTelephone", "5555550100", "12"),
        CommunicationNumber("ElectronicMail", "alex.testpatient@example.test"),
        CommunicationNumber("HomeTelephone", "5555550103"),
    )
    assert patient.identifiers == (("MedicalRecordIdentificationNumberEHR", "TEST-MRN-0001"),)


def test_patient_data_stays_out_of_repr() -> None:
    text = repr(fixture("newrx_full.xml").patient)
    assert "TESTPATIENT" not in text
    assert "1980" not in text
    assert "TEST-MRN" not in text


def test_full_fixture_pharmacy_and_prescriber() -> None:
    rx = fixture("newrx_full.xml")
    assert rx.pharmacy is not None
    assert (rx.pharmacy.ncpdpid, rx.pharmacy.npi, rx.pharmacy.business_name) == (
        "1234567",
        "1000000004",
        "TESTPHARMACY",
    )
    assert [n.kind for n in rx.pharmacy.communication_numbers] == ["PrimaryTelephone", "Fax"]
    prescriber = rx.prescriber
    assert prescriber.kind == "non_veterinarian"
    assert (prescriber.npi, prescriber.dea_number, prescriber.state_license_number) == (
        "1111111112",
        "BT1234563",
        "TESTLIC001",
    )
    assert prescriber.name == Name("TESTPRESCRIBER", "SAM")
    assert prescriber.address.line1 == "2 Test Avenue"
    assert prescriber.identifiers == (
        ("StateLicenseNumber", "TESTLIC001"),
        ("DEANumber", "BT1234563"),
        ("NPI", "1111111112"),
    )


def test_full_fixture_medication() -> None:
    med = fixture("newrx_full.xml").medication
    assert med.drug_description == "TESTDRUG 10 MG ORAL TABLET"
    assert med.product_code == ProductCode("99999000101", "ND")
    assert med.strength == Strength("10", "C42998", "C28253")
    assert med.drug_db_code == DrugDbCode("999991", "SCD")
    assert med.dea_schedule is None
    assert not med.controlled
    assert med.quantity == Quantity(Decimal("60"), "38", "C48542")
    assert med.days_supply == 30
    assert med.written_date == DateValue(
        dt.date(2025, 1, 14), dt.datetime(2025, 1, 14, 16, 45, tzinfo=dt.UTC)
    )
    assert (med.substitutions, med.number_of_refills) == ("1", 2)
    assert med.note == "Synthetic test prescription; not for dispensing."
    assert med.prescriber_checked_rems == "A"
    assert med.diagnoses == (
        Diagnosis(
            "1",
            Code("I10", "ABF", "Essential (primary) hypertension"),
            Code("E119", "ABF", "Type 2 diabetes mellitus without complications"),
        ),
        Diagnosis("2", Code("38341003", "LD")),
    )


def test_full_fixture_structured_sig() -> None:
    sig = fixture("newrx_full.xml").medication.sig
    assert sig.text.startswith("Take 1 tablet by mouth twice daily")
    assert sig.as_needed
    assert ("CodeSystem/SNOMEDVersion", "20170131") in sig.other
    (instruction,) = sig.instructions
    assert instruction.dose_quantity == Decimal(1)
    assert instruction.dose_unit == Coded("tablet", "DoseUnitOfMeasure", "C48542")
    assert instruction.dose_delivery_method == Coded("Take", "SNOMED", "419652001")
    assert instruction.route == Coded("oral route", "SNOMED", "26643006")
    assert instruction.frequency == Decimal(2)
    assert instruction.frequency_units == Coded("day", "SNOMED", "258703001")
    assert (instruction.duration, instruction.duration_units) == (
        Decimal(30),
        Coded("day", "SNOMED", "258703001"),
    )
    assert instruction.indication == Coded("headache", "SNOMED", "25064002")
    assert instruction.as_needed


def test_days_supply_can_be_computed_from_the_structured_sig() -> None:
    rx = newrx(newrx_xml(structured_sig=True, quantity="60"))
    (instruction,) = rx.medication.sig.instructions
    assert instruction.administrations_per_day() == 2
    per_day = instruction.quantity_per_day()
    assert per_day == 2
    assert rx.medication.quantity.value / per_day == 30
    assert not instruction.as_needed


def test_interval_sig_every_12_hours() -> None:
    root = newrx_tree(structured_sig=True)
    timing = _find(root, "Body/NewRx/MedicationPrescribed/Sig/Instruction/TimingAndDuration")
    timing.remove(timing[0])
    timing.append(
        _fragment(
            "<Interval><IntervalNumericValue>12</IntervalNumericValue>"
            "<IntervalUnits><Text>hour</Text><Qualifier>SNOMED</Qualifier>"
            "<Code>258702006</Code></IntervalUnits></Interval>"
        )
    )
    (instruction,) = newrx(to_bytes(root)).medication.sig.instructions
    assert (instruction.interval, instruction.frequency) == (Decimal(12), None)
    assert instruction.administrations_per_day() == 2


def test_unmodelled_structured_sig_parts_are_kept_as_text() -> None:
    document = newrx_xml(
        structured_sig=True,
        append={
            "Body/NewRx/MedicationPrescribed/Sig/Instruction": (
                "<TimingAndDuration><AdministrationTiming><AdministrationTimingEvent>"
                "<Text>bedtime</Text><Code>21029003</Code></AdministrationTimingEvent>"
                "</AdministrationTiming></TimingAndDuration>"
            )
        },
    )
    (instruction,) = newrx(document).medication.sig.instructions
    assert instruction.other == (
        ("TimingAndDuration/AdministrationTiming/AdministrationTimingEvent/Text", "bedtime"),
        ("TimingAndDuration/AdministrationTiming/AdministrationTimingEvent/Code", "21029003"),
    )
    assert instruction.frequency == Decimal(2)


def test_dose_range_keeps_both_ends() -> None:
    document = newrx_xml(
        structured_sig=True,
        append={
            "Body/NewRx/MedicationPrescribed/Sig/Instruction/DoseAdministration/Dosage": (
                "<DoseQuantity>2</DoseQuantity>"
            )
        },
    )
    (instruction,) = newrx(document).medication.sig.instructions
    assert (instruction.dose_quantity, instruction.dose_quantity_max) == (1, 2)


def test_free_text_sig_only() -> None:
    sig = newrx(newrx_xml()).medication.sig
    assert (sig.text, sig.instructions, sig.as_needed) == (
        "Take 1 tablet by mouth twice daily",
        (),
        False,
    )


def test_controlled_fixture() -> None:
    rx = fixture("newrx_controlled.xml")
    assert rx.medication.dea_schedule == "C48675"
    assert rx.medication.controlled
    assert rx.prescriber.dea_number == "BT1234563"
    assert rx.medication.number_of_refills == 0


def test_minimal_fixture_has_only_required_content() -> None:
    rx = fixture("newrx_minimal.xml")
    assert rx.pharmacy is None
    assert rx.allergies == ()
    assert rx.patient.communication_numbers == ()
    assert rx.medication.product_code is None
    assert rx.medication.days_supply is None
    assert rx.medication.diagnoses == ()
    assert rx.return_receipt is None
    assert rx.prohibit_renewal_request is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-01-15", DateValue(dt.date(2025, 1, 15))),
        (
            "2025-01-15T23:30:00-05:00",
            DateValue(dt.date(2025, 1, 15), dt.datetime(2025, 1, 16, 4, 30, tzinfo=dt.UTC)),
        ),
    ],
)
def test_written_date_forms(written: str, expected: DateValue) -> None:
    sent = "2025-01-16T10:00:00Z"
    assert (
        newrx(newrx_xml(written_date=written, sent_time=sent)).medication.written_date == expected
    )


def test_nonhuman_patient_keeps_what_it_has() -> None:
    root = newrx_tree()
    human = _find(root, "Body/NewRx/Patient/HumanPatient")
    human.tag = "NonHumanPatient"
    human.remove(_find(human, "Address"))
    _find(human, "Name").remove(_find(human, "Name/FirstName"))
    patient = newrx(to_bytes(root)).patient
    assert patient.kind == "nonhuman"
    assert patient.name == Name("TESTPATIENT", None)
    assert patient.address is None
    assert patient.date_of_birth == DateValue(dt.date(1980, 1, 1))


def test_veterinarian_prescriber() -> None:
    root = newrx_tree()
    _find(root, "Body/NewRx/Prescriber/NonVeterinarian").tag = "Veterinarian"
    assert newrx(to_bytes(root)).prescriber.kind == "veterinarian"


def test_veterinarian_needs_no_npi_nor_address() -> None:
    """The Standard identifies veterinarians by state licence: they have no NPI."""
    body = newrx(veterinarian_without_npi())
    prescriber = body.prescriber
    assert (prescriber.kind, prescriber.npi, prescriber.address) == ("veterinarian", None, None)
    assert prescriber.state_license_number == "VET-CA-12345"
    assert ("StateLicenseNumber", "VET-CA-12345") in prescriber.identifiers
    assert body.patient.address == Address("4 Test Farm", "Testville", "CA", "90000", None)


def test_veterinarian_address_parts_are_optional() -> None:
    root = etree.fromstring(veterinarian_without_npi())
    address = etree.fromstring("<Address><City>Testville</City></Address>")
    _find(root, "Body/NewRx/Prescriber/Veterinarian/Name").addnext(address)
    prescriber = newrx(to_bytes(root)).prescriber
    assert prescriber.address == Address(None, "Testville", None, None, None)


def test_non_veterinarian_address_keeps_every_part() -> None:
    path = "Body/NewRx/Prescriber/NonVeterinarian/Address/CountryCode"
    assert rejection(newrx_xml(omit=[path])).xpath == f"/Message/{path}"


@pytest.mark.parametrize(
    "parts",
    [["AddressLine1"], ["CountryCode"], ["AddressLine1", "City", "StateProvince", "PostalCode",
                                         "CountryCode"]],
    ids=["no-line1", "no-country", "empty"],
)  # fmt: skip
def test_pharmacy_address_parts_are_optional(parts: list[str]) -> None:
    document = newrx_xml(omit=[f"Body/NewRx/Pharmacy/Address/{part}" for part in parts])
    pharmacy = newrx(document).pharmacy
    assert pharmacy is not None
    assert pharmacy.address is not None
    assert pharmacy.address.line1 == (None if "AddressLine1" in parts else "3 Test Plaza")
    assert pharmacy.address.country_code == (None if "CountryCode" in parts else "US")


def test_pharmacy_address_order_is_still_checked() -> None:
    root = newrx_tree()
    address = _find(root, "Body/NewRx/Pharmacy/Address")
    address.append(_find(root, "Body/NewRx/Pharmacy/Address/AddressLine1"))
    assert rejection(to_bytes(root)).xpath == f"{N}/Pharmacy/Address/AddressLine1"


@pytest.mark.parametrize("part", ["AddressLine1", "City", "StateProvince", "PostalCode",
                                  "CountryCode"])  # fmt: skip
def test_human_patient_address_keeps_every_part(part: str) -> None:
    error = rejection(newrx_xml(omit=[f"Body/NewRx/Patient/HumanPatient/Address/{part}"]))
    assert (error.description_code, error.xpath) == ("3000", f"{PATIENT}/Address/{part}")


def test_to_json_is_plain_json() -> None:
    message = parse_message((FIXTURES / "newrx_full.xml").read_bytes())
    data = to_json(message)
    assert json.loads(json.dumps(data)) == data
    body = data["body"]
    assert isinstance(body, dict)
    medication = body["medication"]
    assert isinstance(medication, dict)
    assert medication["quantity"]["value"] == "60"
    assert medication["written_date"]["datetime"] == "2025-01-14T16:45:00+00:00"
    assert medication["sig"]["instructions"][0]["frequency"] == "2"


# --- structure (3000) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Patient", "Prescriber", "MedicationPrescribed"])
def test_missing_required_block(name: str) -> None:
    error = rejection(newrx_xml(omit=[f"Body/NewRx/{name}"]))
    assert isinstance(error, StandardViolationError)
    assert (error.detail, error.xpath) == ("required element missing", f"{N}/{name}")


def test_out_of_order_block_is_reported_where_it_stands() -> None:
    root = newrx_tree()
    body = _find(root, "Body/NewRx")
    pharmacy = _find(body, "Pharmacy")
    body.remove(pharmacy)
    _find(body, "Prescriber").addnext(pharmacy)
    error = rejection(to_bytes(root))
    assert (error.detail, error.xpath) == ("element out of order", f"{N}/Pharmacy")


def test_required_block_placed_late_is_out_of_order() -> None:
    root = newrx_tree()
    body = _find(root, "Body/NewRx")
    patient = _find(body, "Patient")
    body.remove(patient)
    body.append(patient)
    error = rejection(to_bytes(root))
    assert (error.detail, error.xpath) == ("element out of order", f"{N}/Pharmacy")


def test_unexpected_element() -> None:
    error = rejection(newrx_xml(append={"Body/NewRx": "<Discount>10</Discount>"}))
    assert (error.detail, error.xpath) == ("unexpected element", f"{N}/Discount")


def test_unexpected_element_in_closed_block() -> None:
    document = newrx_xml(append={"Body/NewRx/MedicationPrescribed/Quantity": "<Extra>1</Extra>"})
    assert rejection(document).xpath == f"{MED}/Quantity/Extra"


def test_third_diagnosis_is_indexed() -> None:
    diagnosis = (
        "<Diagnosis><ClinicalInformationQualifier>1</ClinicalInformationQualifier>"
        "<Primary><Code>I10</Code><Qualifier>ABF</Qualifier></Primary></Diagnosis>"
    )
    root = newrx_tree()
    refills = _find(root, "Body/NewRx/MedicationPrescribed/NumberOfRefills")
    for _ in range(3):
        refills.addnext(_fragment(diagnosis))
    error = rejection(to_bytes(root))
    assert (error.detail, error.xpath) == ("element occurs too often", f"{MED}/Diagnosis[3]")


def test_bad_diagnosis_value_is_indexed_among_repeats() -> None:
    document = edit(
        (FIXTURES / "newrx_full.xml").read_bytes(),
        replace={"Body/NewRx/MedicationPrescribed/Diagnosis[2]/Primary/Qualifier": "ICD"},
    )
    assert rejection(document).xpath == f"{MED}/Diagnosis[2]/Primary/Qualifier"


@pytest.mark.parametrize("value", ["2025-02-30", "2025-13-01", "15/01/2025", "2025-1-5"])
def test_invalid_date(value: str) -> None:
    error = rejection(
        newrx_xml(replace={"Body/NewRx/MedicationPrescribed/WrittenDate/Date": value})
    )
    assert (error.description_code, error.xpath) == ("3000", f"{MED}/WrittenDate/Date")


def test_invalid_date_time_of_birth() -> None:
    error = rejection(newrx_xml(date_of_birth="1980-01-01T24:61:00Z"))
    assert error.xpath == f"{PATIENT}/DateOfBirth/DateTime"


@pytest.mark.parametrize("value", ["thirty", "3O", "1e3", "", "1,000", "123456789012"])
def test_non_numeric_or_too_long_quantity(value: str) -> None:
    error = rejection(newrx_xml(quantity=value))
    assert (error.description_code, error.xpath) == ("3000", f"{MED}/Quantity/Value")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("Body/NewRx/Patient/HumanPatient/Gender", "X"),
        ("Body/NewRx/MedicationPrescribed/Quantity/CodeListQualifier", "ZZ"),
        ("Body/NewRx/MedicationPrescribed/Substitutions", "5"),
        ("Body/NewRx/MedicationPrescribed/DrugCoded/ProductCode/Qualifier", "NDC"),
    ],
)
def test_code_list_violations(path: str, value: str) -> None:
    error = rejection(newrx_xml(replace={path: value}))
    assert (error.description_code, error.detail) == ("3000", "value not in code list")
    assert error.xpath == f"/Message/{path}"


def test_unknown_dea_schedule() -> None:
    document = newrx_xml(
        controlled=True,
        replace={"Body/NewRx/MedicationPrescribed/DrugCoded/DEASchedule/Code": "C99999"},
    )
    assert rejection(document).xpath == f"{MED}/DrugCoded/DEASchedule/Code"


@pytest.mark.parametrize("unit", ["Unspecified", "tablet", "48542"])
def test_quantity_unit_must_be_an_nci_code(unit: str) -> None:
    error = rejection(newrx_xml(quantity_unit=unit))
    assert (error.description_code, error.xpath) == (
        "3000",
        f"{MED}/Quantity/QuantityUnitOfMeasure/Code",
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("Body/NewRx/MedicationPrescribed/DrugDescription", "D" * 106),
        ("Body/NewRx/MedicationPrescribed/Sig/SigText", "S" * 1001),
        ("Body/NewRx/MedicationPrescribed/NumberOfRefills", "100"),
        ("Body/NewRx/MedicationPrescribed/NumberOfRefills", "-1"),
        ("Body/NewRx/MedicationPrescribed/DaysSupply", "1000"),
        ("Body/NewRx/MedicationPrescribed/DaysSupply", "7.5"),
        ("Body/NewRx/Prescriber/NonVeterinarian/Identification/NPI", "1" * 36),
        ("Body/NewRx/Patient/HumanPatient/Name/LastName", "L" * 36),
        ("Body/NewRx/Patient/HumanPatient/Name/FirstName", ""),
    ],
)
def test_length_and_datatype_violations(path: str, value: str) -> None:
    error = rejection(newrx_xml(replace={path: value}))
    assert (error.description_code, error.xpath) == ("3000", f"/Message/{path}")


def test_note_longer_than_210() -> None:
    error = rejection(newrx_xml(note="N" * 211))
    assert error.xpath == f"{MED}/Note"
    assert newrx(newrx_xml(note="N" * 210)).medication.note == "N" * 210


def test_pharmacy_needs_ncpdpid_and_npi() -> None:
    error = rejection(newrx_xml(omit=["Body/NewRx/Pharmacy/Identification/NPI"]))
    assert error.xpath == f"{N}/Pharmacy/Identification/NPI"


def test_prescriber_needs_npi() -> None:
    error = rejection(newrx_xml(omit=["Body/NewRx/Prescriber/NonVeterinarian/Identification/NPI"]))
    assert error.xpath == f"{N}/Prescriber/NonVeterinarian/Identification/NPI"


def test_ndc_format_and_check_digits_are_not_rejections() -> None:
    rx = newrx(newrx_xml(ndc="12-34", prescriber_npi="1234567890", prescriber_dea="XX0000000"))
    assert rx.medication.product_code == ProductCode("12-34", "ND")
    assert (rx.prescriber.npi, rx.prescriber.dea_number) == ("1234567890", "XX0000000")


def test_no_known_allergies_excludes_allergies() -> None:
    document = edit(
        (FIXTURES / "newrx_controlled.xml").read_bytes(),
        append={
            "Body/NewRx/AllergyOrAdverseEvent": (
                "<Allergies><DrugProductCoded><Text>X</Text></DrugProductCoded></Allergies>"
            )
        },
    )
    assert rejection(document).xpath == f"{N}/AllergyOrAdverseEvent/Allergies"


def test_no_known_allergies_must_be_y() -> None:
    document = edit(
        (FIXTURES / "newrx_controlled.xml").read_bytes(),
        replace={"Body/NewRx/AllergyOrAdverseEvent/NoKnownAllergies": "N"},
    )
    assert rejection(document).xpath == f"{N}/AllergyOrAdverseEvent/NoKnownAllergies"


def test_text_inside_a_complex_element_is_rejected() -> None:
    error = rejection(newrx_xml(replace={"Body/NewRx/Patient": "stray text"}))
    assert (error.detail, error.xpath) == ("unexpected text content", f"{N}/Patient")


def test_leaf_with_children_is_rejected() -> None:
    document = newrx_xml(append={"Body/NewRx/MedicationPrescribed/DrugDescription": "<b>x</b>"})
    assert rejection(document).xpath == f"{MED}/DrugDescription/b"


def test_unmodelled_blocks_are_accepted_without_content_validation() -> None:
    root = newrx_tree()
    body = _find(root, "Body/NewRx")
    benefits = "<BenefitsCoordination><Any><Goes>1</Goes></Any></BenefitsCoordination>"
    _find(body, "Patient").addprevious(_fragment(benefits))
    body.append(_fragment("<FollowUpPrescriber><Y/></FollowUpPrescriber>"))
    assert newrx(to_bytes(root)).patient.kind == "human"


# --- content (2000) -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "0.000"])
def test_quantity_must_be_positive(value: str) -> None:
    error = rejection(newrx_xml(quantity=value))
    assert isinstance(error, ContentInvalidError)
    assert (error.description_code, error.xpath) == ("2000", f"{MED}/Quantity/Value")


def test_pharmacy_must_match_header_to() -> None:
    error = rejection(newrx_xml(to="1234567", pharmacy_ncpdpid="7654321"))
    assert isinstance(error, ContentInvalidError)
    assert error.xpath == f"{N}/Pharmacy/Identification/NCPDPID"


def test_pharmacy_mismatch_is_fine_when_not_addressed_to_a_pharmacy() -> None:
    document = newrx_xml(pharmacy_ncpdpid="7654321", replace={"Header/To/@Qualifier": "M"})
    assert newrx(document).pharmacy is not None


@pytest.mark.parametrize(
    ("birth", "form"), [("2025-01-17", "Date"), ("2025-01-15T10:00:01Z", "DateTime")]
)
def test_birth_after_sent_time(birth: str, form: str) -> None:
    error = rejection(newrx_xml(date_of_birth=birth, sent_time="2025-01-15T10:00:00Z"))
    assert isinstance(error, ContentInvalidError)
    assert error.xpath == f"{PATIENT}/DateOfBirth/{form}"


def test_birth_on_the_day_of_sending_is_fine_in_any_zone() -> None:
    # sent at 01:00 UTC on the 15th, it may already be the 16th east of UTC
    rx = newrx(newrx_xml(date_of_birth="2025-01-16", sent_time="2025-01-15T11:00:00Z"))
    assert rx.patient.date_of_birth == DateValue(dt.date(2025, 1, 16))


def test_structure_is_checked_before_content() -> None:
    document = newrx_xml(
        quantity="0", replace={"Body/NewRx/MedicationPrescribed/Substitutions": "7"}
    )
    assert rejection(document).description_code == "3000"


def _fragment(xml: str) -> etree._Element:
    return etree.fromstring(xml)


def _find(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    assert found is not None, path
    return found


def test_second_indication_is_kept_as_text() -> None:
    document = edit(
        (FIXTURES / "newrx_full.xml").read_bytes(),
        append={
            "Body/NewRx/MedicationPrescribed/Sig/Instruction": (
                "<IndicationForUse><IndicationValue><Text>fever</Text></IndicationValue>"
                "</IndicationForUse>"
            )
        },
    )
    (instruction,) = newrx(document).medication.sig.instructions
    assert instruction.indication == Coded("headache", "SNOMED", "25064002")
    assert ("IndicationForUse/IndicationValue/Text", "fever") in instruction.other


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("Body/NewRx/MedicationPrescribed/Quantity/Value", "\u0663\u0660"),
        ("Body/NewRx/MedicationPrescribed/WrittenDate/Date", "\u0662\u0660\u0662\u0665-01-15"),
        ("Body/NewRx/MedicationPrescribed/NumberOfRefills", "\u0661"),
    ],
)
def test_only_ascii_digits_count_as_numbers(path: str, value: str) -> None:
    assert rejection(newrx_xml(replace={path: value})).xpath == f"/Message/{path}"
