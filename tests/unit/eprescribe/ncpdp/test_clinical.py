"""The clinical parts of a NewRx (DoNotFill, NeedNoLaterThan, CompoundInformation, prior
authorization, DUE, DeliveryRequest, Observation, Supervisor, Facility) and TestMessage: each
read, and each bad value rejected (3000) with its XPath."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from eprescribe.ncpdp import (
    Address,
    CoAgent,
    CommunicationNumber,
    CompoundInformation,
    CompoundIngredient,
    DateValue,
    DrugUseEvaluation,
    Facility,
    Measurement,
    Name,
    NeedNoLaterThan,
    NewRx,
    Observation,
    OrderDetails,
    PriorAuthorization,
    ScriptRejection,
    StandardViolationError,
    Supervisor,
    from_json,
    parse_message,
    to_json,
)
from tests.support.script_samples import clinical_newrx, edit, newrx_xml

N = "/Message/Body/NewRx"
MED = f"{N}/MedicationPrescribed"
M = "Body/NewRx/MedicationPrescribed"
COMPOUND = f"{M}/CompoundInformation"
LOT = f"{COMPOUND}/CompoundIngredientsLotNotUsed"
INGREDIENT = f"{LOT}/CompoundIngredient/CompoundIngredientItemDescription"
LOT_XPATH = f"{MED}/CompoundInformation/CompoundIngredientsLotNotUsed"
WEIGHED = DateValue(dt.date(2025, 1, 14))
MORNING = dt.datetime(2025, 1, 17, 13, tzinfo=dt.UTC)


def newrx(document: bytes) -> NewRx:
    body = parse_message(document).body
    assert isinstance(body, NewRx)
    return body


def rejected_at(document: bytes) -> str | None:
    with pytest.raises(ScriptRejection) as caught:
        parse_message(document)
    assert isinstance(caught.value, StandardViolationError)
    assert caught.value.description_code == "3000"
    return caught.value.xpath


# --- reading ------------------------------------------------------------------------------


def test_a_newrx_without_them_has_none() -> None:
    rx = newrx(newrx_xml())
    medication = rx.medication
    assert (rx.facility, rx.observation, rx.supervisor) == (None, None, None)
    assert medication.do_not_fill is None
    assert medication.need_no_later_than is None
    assert medication.compound is None
    assert medication.prior_authorization is None
    assert medication.drug_use_evaluations == ()
    assert medication.delivery_request is None
    assert parse_message(newrx_xml()).header.test_message is False


@pytest.mark.parametrize("code", ["Y", "H", "E"])
def test_do_not_fill(code: str) -> None:
    assert newrx(clinical_newrx(do_not_fill=code)).medication.do_not_fill == code


def test_need_no_later_than_with_its_reason() -> None:
    assert newrx(clinical_newrx()).medication.need_no_later_than == NeedNoLaterThan(
        DateValue(dt.date(2025, 1, 17)), ("Discharge from the care home on Friday",)
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-01-17T08:00:00-05:00", DateValue(dt.date(2025, 1, 17), MORNING)),
        ("<Date>2025-01-18</Date>", DateValue(dt.date(2025, 1, 18))),
    ],
)  # fmt: skip
def test_need_no_later_than_as_a_date_time_or_the_date_choice(
    written: str, expected: DateValue
) -> None:
    root = f"{M}/NeedNoLaterThan"
    document = edit(clinical_newrx(), omit=[f"{root}/NeededNoLaterThanReason"])
    if written.startswith("<"):
        document = edit(
            document,
            omit=[f"{root}/NeededNoLaterThanDate"],
            append={root: f"<NeededNoLaterThanDate>{written}</NeededNoLaterThanDate>"},
        )
    else:
        document = edit(document, replace={f"{root}/NeededNoLaterThanDate": written})
    assert newrx(document).medication.need_no_later_than == NeedNoLaterThan(expected)


def test_compound_ingredients() -> None:
    compound = newrx(clinical_newrx()).medication.compound
    assert compound == CompoundInformation(
        "C42996",
        (
            CompoundIngredient(
                "TESTDRUG 10 MG ORAL TABLET",
                Decimal("15"),
                "38",
                "C48542",
                item_code="99999000101",
                item_qualifier="ND",
            ),
            CompoundIngredient("TESTVEHICLE ORAL SUSPENSION", Decimal("150"), "38", "C28254"),
        ),
    )


def test_an_ingredients_strength_schedule_and_due() -> None:
    ingredient = f"{LOT}/CompoundIngredient"
    document = edit(
        clinical_newrx(),
        append={
            ingredient: "<Strength><StrengthValue>10</StrengthValue>"
            "<StrengthUnitOfMeasure><Code>C28253</Code></StrengthUnitOfMeasure></Strength>",
            LOT: "<DrugUseEvaluation><ServiceReasonCode>DA</ServiceReasonCode></DrugUseEvaluation>",
        },
    )
    edited = edit(document, append={ingredient: "<DEASchedule><Code>C48677</Code></DEASchedule>"})
    compound = newrx(edited).medication.compound
    assert compound is not None
    first = compound.ingredients[0]
    assert (first.strength_value, first.strength_form_code, first.strength_unit_code) == (
        "10",
        None,
        "C28253",
    )
    assert first.dea_schedule == "C48677"
    assert first.drug_use_evaluations == (DrugUseEvaluation("DA"),)


def test_prior_authorization_and_its_status() -> None:
    medication = newrx(clinical_newrx()).medication
    assert medication.prior_authorization == PriorAuthorization("PA-TEST-0001", "A")
    only_status = edit(clinical_newrx(), omit=[f"{M}/PriorAuthorization"])
    assert newrx(only_status).medication.prior_authorization == PriorAuthorization(None, "A")


def test_drug_use_evaluation() -> None:
    assert newrx(clinical_newrx()).medication.drug_use_evaluations == (
        DrugUseEvaluation(
            "ER",
            "M0",
            "1B",
            (CoAgent("99999000202", "ND", "TESTOTHERDRUG 20 MG"),),
            "2",
            "Prescriber reviewed the interaction",
        ),
    )


def test_delivery_request() -> None:
    assert newrx(clinical_newrx()).medication.delivery_request == "FIRST FILL DELIVERY"


def test_observation_weight_and_height_with_their_dates() -> None:
    assert newrx(clinical_newrx()).observation == Observation(
        (
            Measurement("29463-7", Decimal("18.4"), "kg", WEIGHED, "2.61", "2.1"),
            Measurement("8302-2", Decimal("109"), "cm", WEIGHED, "2.61", "2.1"),
        ),
        "Measured at the clinic visit",
    )  # fmt: skip


def test_supervisor() -> None:
    address = Address("2 Test Avenue", "Testville", "CA", "90000", "US")
    assert newrx(clinical_newrx()).supervisor == Supervisor(
        "non_veterinarian",
        Name("TESTSUPERVISOR", "KIM"),
        (("NPI", "1000000004"),),
        address,
        (CommunicationNumber("PrimaryTelephone", "5555550103"),),
    )


def test_facility() -> None:
    assert newrx(clinical_newrx()).facility == Facility(
        "TEST CARE HOME",
        (("NPI", "1000000004"),),
        Address("4 Test Lane", "Testville", "CA", "90000", "US"),
        (CommunicationNumber("PrimaryTelephone", "5555550104"),),
        "B",
        "12",
        "2",
    )


def test_test_message() -> None:
    assert parse_message(clinical_newrx(test_message=True)).header.test_message is True
    as_word = edit(clinical_newrx(test_message=True), replace={"Header/TestMessage": "false"})
    assert parse_message(as_word).header.test_message is False


def test_they_are_kept_and_read_back_from_storage() -> None:
    message = parse_message(clinical_newrx())
    assert isinstance(message.body, NewRx)
    details = OrderDetails.of(message.header, message.body)
    assert from_json(OrderDetails, to_json(details)) == details
    assert details.observation == message.body.observation
    medication = message.body.medication
    assert from_json(type(medication), to_json(medication)) == medication


def test_stored_values_outside_the_code_lists_do_not_read_back() -> None:
    data = to_json(newrx(clinical_newrx()).medication)
    data["do_not_fill"] = "X"
    with pytest.raises(ValueError, match="do_not_fill"):
        from_json(type(newrx(clinical_newrx()).medication), data)


# --- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edits", "xpath"),
    [
        ({"replace": {f"{M}/DoNotFill": "N"}}, f"{MED}/DoNotFill"),
        ({"replace": {f"{M}/DoNotFill": "YY"}}, f"{MED}/DoNotFill"),
        ({"append": {M: "<DoNotFill>Y</DoNotFill>"}}, f"{MED}/DoNotFill[2]"),
        (
            {"replace": {f"{M}/NeedNoLaterThan/NeededNoLaterThanDate": "17/01/2025"}},
            f"{MED}/NeedNoLaterThan/NeededNoLaterThanDate",
        ),
        (
            {"omit": [f"{M}/NeedNoLaterThan/NeededNoLaterThanDate"]},
            f"{MED}/NeedNoLaterThan/NeededNoLaterThanDate",
        ),
        (
            {"replace": {f"{M}/NeedNoLaterThan/NeededNoLaterThanReason": "x" * 256}},
            f"{MED}/NeedNoLaterThan/NeededNoLaterThanReason",
        ),
        ({"replace": {f"{M}/PriorAuthorization": "P" * 36}}, f"{MED}/PriorAuthorization"),
        ({"replace": {f"{M}/PriorAuthorizationStatus": "X"}}, f"{MED}/PriorAuthorizationStatus"),
        (
            {"replace": {f"{M}/DrugUseEvaluation/ServiceReasonCode": "ERR"}},
            f"{MED}/DrugUseEvaluation/ServiceReasonCode",
        ),
        (
            {"omit": [f"{M}/DrugUseEvaluation/ServiceReasonCode"]},
            f"{MED}/DrugUseEvaluation/ServiceReasonCode",
        ),
        (
            {"replace": {f"{M}/DrugUseEvaluation/ClinicalSignificanceCode": "12"}},
            f"{MED}/DrugUseEvaluation/ClinicalSignificanceCode",
        ),
        (
            {"omit": [f"{M}/DrugUseEvaluation/CoAgent/CoAgentCode/Qualifier"]},
            f"{MED}/DrugUseEvaluation/CoAgent/CoAgentCode/Qualifier",
        ),
        ({"replace": {f"{M}/DeliveryRequest": "D" * 36}}, f"{MED}/DeliveryRequest"),
        (
            {"omit": [f"{COMPOUND}/FinalCompoundPharmaceuticalDosageForm"]},
            f"{MED}/CompoundInformation/FinalCompoundPharmaceuticalDosageForm",
        ),
        (
            {"omit": [f"{LOT}[2]", LOT]},
            LOT_XPATH,
        ),
        (
            {"replace": {f"{LOT}/Quantity/Value": "many"}},
            f"{LOT_XPATH}[1]/Quantity/Value",
        ),
        (
            {"replace": {f"{LOT}/Quantity/QuantityUnitOfMeasure/Code": "tablet"}},
            f"{LOT_XPATH}[1]/Quantity/QuantityUnitOfMeasure/Code",
        ),
        (
            {"omit": [INGREDIENT]},
            f"{LOT_XPATH}[1]/CompoundIngredient/CompoundIngredientItemDescription",
        ),
        (
            {"replace": {INGREDIENT: "D" * 106}},
            f"{LOT_XPATH}[1]/CompoundIngredient/CompoundIngredientItemDescription",
        ),
        (
            {"replace": {"Body/NewRx/Observation/Measurement/Value": "heavy"}},
            f"{N}/Observation/Measurement[1]/Value",
        ),
        (
            {"omit": ["Body/NewRx/Observation/Measurement/UnitOfMeasure"]},
            f"{N}/Observation/Measurement[1]/UnitOfMeasure",
        ),
        (
            {"replace": {"Body/NewRx/Observation/Measurement/ObservationDate/Date": "2025-02-30"}},
            f"{N}/Observation/Measurement[1]/ObservationDate/Date",
        ),
        (
            {"omit": ["Body/NewRx/Observation/Measurement", "Body/NewRx/Observation/Measurement"]},
            f"{N}/Observation/Measurement",
        ),
        (
            {"omit": ["Body/NewRx/Supervisor/NonVeterinarian/Name"]},
            f"{N}/Supervisor/NonVeterinarian/Name",
        ),
        (
            {"replace": {"Body/NewRx/Supervisor/NonVeterinarian/Identification/NPI": "1" * 36}},
            f"{N}/Supervisor/NonVeterinarian/Identification/NPI",
        ),
        (
            {"append": {"Body/NewRx/Facility": "<Room>13</Room>"}},
            f"{N}/Facility/Room[2]",
        ),
        (
            {"replace": {"Body/NewRx/Facility/FacilityName": "F" * 256}},
            f"{N}/Facility/FacilityName",
        ),
        ({"replace": {"Header/TestMessage": "yes"}}, "/Message/Header/TestMessage"),
    ],
)  # fmt: skip
def test_bad_values_are_rejected_with_their_xpath(edits: dict[str, object], xpath: str) -> None:
    document = edit(clinical_newrx(test_message=True), **edits)  # type: ignore[arg-type]
    assert rejected_at(document) == xpath


def test_a_compound_of_more_than_25_ingredients_is_rejected() -> None:
    lot = (
        "<CompoundIngredientsLotNotUsed><CompoundIngredient>"
        "<CompoundIngredientItemDescription>TESTINGREDIENT</CompoundIngredientItemDescription>"
        "</CompoundIngredient><Quantity><Value>1</Value><CodeListQualifier>38</CodeListQualifier>"
        "<QuantityUnitOfMeasure><Code>C48155</Code></QuantityUnitOfMeasure></Quantity>"
        "</CompoundIngredientsLotNotUsed>"
    )
    document = clinical_newrx()
    for _ in range(23):
        document = edit(document, append={COMPOUND: lot})
    assert len(newrx(document).medication.compound.ingredients) == 25  # type: ignore[union-attr]
    assert rejected_at(edit(document, append={COMPOUND: lot})) == (
        f"{MED}/CompoundInformation/CompoundIngredientsLotNotUsed[26]"
    )


def test_observation_and_supervisor_keep_their_place_in_newrx() -> None:
    """Facility, Observation and Supervisor stand where the NewRx sequence puts them."""
    moved = edit(
        clinical_newrx(),
        omit=["Body/NewRx/Observation"],
        append={
            "Body/NewRx": "<Observation><Measurement><VitalSign>29463-7</VitalSign>"
            "<Value>18</Value><UnitOfMeasure>kg</UnitOfMeasure></Measurement></Observation>"
        },
    )
    assert rejected_at(moved) == f"{N}/Observation"
