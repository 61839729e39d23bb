"""Clinical parts of a NewRx a pharmacist must see (NCPDP SCRIPT Standard 2017071).

In ``MedicationPrescribed``: ``DoNotFill``, ``NeedNoLaterThan``, ``CompoundInformation``,
``PriorAuthorization`` (with ``PriorAuthorizationStatus``), ``DrugUseEvaluation`` and
``DeliveryRequest``. In ``NewRx``: ``Observation`` (measurements such as a child's weight and
height), ``Supervisor`` and ``Facility``.

The official XSDs are NCPDP member material and not part of this project, so what is checked
here is what public material confirms, and the rest is read liberally:

- code lists the hub enforces (a value outside them is a 3000 rejection): ``DoNotFill`` Y (do
  not fill), H (hold) and E (the third value other 2017071 receivers accept; shown as do not
  fill), ``PriorAuthorizationStatus`` A, D, F, N, R, the DEA schedule of a compound ingredient
  and the quantity of an ingredient (as for ``MedicationPrescribed/Quantity``);
- lengths: the an1..35 identifiers and codes, an1..105 for an ingredient's description (as
  ``DrugDescription``), the two-character DUR codes and one-character clinical significance of
  NCPDP's code sets; free text whose SCRIPT length could not be confirmed is bounded by
  :data:`FREE_TEXT_MAX` so that nothing unbounded reaches storage;
- order: the children named in each block's spec are checked in order; where the standard's
  order could not be confirmed (the position of these elements among ``MedicationPrescribed``'s
  other children, the inside of ``Facility``) they are read wherever they stand, and children
  not modelled here are tolerated, as for the other open blocks.

Value objects hold what was read; ``Literal`` fields make :func:`~eprescribe.ncpdp.types.
from_json` refuse stored data outside the code lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Final, Literal, TypeAlias, cast

from lxml import etree

from eprescribe.ncpdp.errors import StandardViolationError
from eprescribe.ncpdp.parties import parse_address, parse_communication_numbers, parse_name
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Children,
    Slot,
    Spec,
    date_value,
    decimal_value,
    flatten,
    in_code_list,
    items,
    leaf,
    only_child,
    opt,
    opt_text,
    req,
    single,
    text,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import (
    DRUG_DESCRIPTION_MAX,
    Address,
    CommunicationNumber,
    DateValue,
    Name,
    parse_date,
    parse_datetime,
)

__all__ = [
    "COMPOUND_INGREDIENTS_MAX",
    "DO_NOT_FILL",
    "FREE_TEXT_MAX",
    "PRIOR_AUTHORIZATION_STATUSES",
    "CoAgent",
    "CompoundInformation",
    "CompoundIngredient",
    "DoNotFill",
    "DrugUseEvaluation",
    "Facility",
    "Measurement",
    "NeedNoLaterThan",
    "Observation",
    "PriorAuthorization",
    "Supervisor",
    "parse_compound_information",
    "parse_delivery_request",
    "parse_do_not_fill",
    "parse_drug_use_evaluation",
    "parse_facility",
    "parse_need_no_later_than",
    "parse_observation",
    "parse_prior_authorization",
    "parse_supervisor",
]

DoNotFill: TypeAlias = Literal["Y", "H", "E"]
#: ``DoNotFill``: Y do not fill, H hold (fill when asked), E do not fill (third 2017071 value)
DO_NOT_FILL: Final = frozenset({"Y", "H", "E"})
PriorAuthorizationStatus: TypeAlias = Literal["A", "D", "F", "N", "R"]
#: A approved, D denied, F deferred, N not required, R requested
PRIOR_AUTHORIZATION_STATUSES: Final = frozenset({"A", "D", "F", "N", "R"})
#: bound of free text whose 2017071 length could not be confirmed from public material
FREE_TEXT_MAX: Final = 255
_ID_MAX: Final = 35
_CODE_MAX: Final = 35
_DUR_CODE_MAX: Final = 2
#: an ingredient list longer than this is not a 2017071 compound (the standard allows 25)
COMPOUND_INGREDIENTS_MAX: Final = 25

#: reads a ``Quantity`` element as (value, code list qualifier, NCI unit code)
_QuantityReader: TypeAlias = Callable[[etree._Element, str], tuple[Decimal, str, str]]
#: reads a ``Code`` wrapper, checked against a code list if one is given
_CodeReader: TypeAlias = Callable[[etree._Element, str, frozenset[str] | None], str]

_NEED_NO_LATER_THAN = Spec(
    req("NeededNoLaterThanDate", 40),
    opt("NeededNoLaterThanReason", UNBOUNDED, FREE_TEXT_MAX),
    open=True,
)
_COMPOUND = Spec(
    req("FinalCompoundPharmaceuticalDosageForm"),
    Slot(("CompoundIngredientsLotNotUsed",), 1, COMPOUND_INGREDIENTS_MAX),
    open=True,
)
_COMPOUND_LOT = Spec(
    req("CompoundIngredient"), req("Quantity"), opt("DrugUseEvaluation", UNBOUNDED), open=True
)
_COMPOUND_INGREDIENT = Spec(
    req("CompoundIngredientItemDescription"),
    opt("ItemNumber"),
    opt("Strength"),
    opt("DEASchedule"),
    open=True,
)
_DUE = Spec(
    req("ServiceReasonCode"),
    opt("ProfessionalServiceCode"),
    opt("ServiceResultCode"),
    opt("CoAgent", UNBOUNDED),
    opt("ClinicalSignificanceCode"),
    opt("AcknowledgementReason"),
    open=True,
)
_CO_AGENT = Spec(req("CoAgentCode"), open=True)
_CO_AGENT_CODE = Spec(
    req("Code", _CODE_MAX),
    req("Qualifier", _CODE_MAX),
    opt("Description", max_len=FREE_TEXT_MAX),
    open=True,
)
_OBSERVATION = Spec(Slot(("Measurement",), 1, UNBOUNDED), opt("ObservationNotes"), open=True)
_MEASUREMENT = Spec(
    req("VitalSign"),
    opt("LOINCVersion"),
    req("Value"),
    req("UnitOfMeasure"),
    opt("UCUMVersion"),
    opt("ObservationDate"),
    open=True,
)
_SUPERVISOR = Spec(Slot(("NonVeterinarian", "Veterinarian")))
_SUPERVISOR_PERSON = Spec(
    opt("Identification"),
    req("Name"),
    opt("Address"),
    opt("CommunicationNumbers"),
    open=True,
)
# the inside of Facility (Identification, FacilityName, Address, CommunicationNumbers,
# FacilityUnit, Room, Bed) is read wherever it stands: its order is not confirmed
_FACILITY = Spec(open=True)


# -- value objects ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class NeedNoLaterThan:
    """``NeedNoLaterThan``: the date the patient needs the medication by, and why."""

    date: DateValue
    reasons: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class PriorAuthorization:
    """``PriorAuthorization`` (the payer's number) and ``PriorAuthorizationStatus``."""

    number: str | None
    status: PriorAuthorizationStatus | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CoAgent:
    """``DrugUseEvaluation/CoAgent/CoAgentCode``: the other drug or condition involved."""

    code: str
    qualifier: str
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DrugUseEvaluation:
    """``DrugUseEvaluation``: a DUR conflict the prescriber saw and what was done about it
    (NCPDP reason for service, professional service and result of service codes)."""

    service_reason_code: str
    professional_service_code: str | None = None
    service_result_code: str | None = None
    co_agents: tuple[CoAgent, ...] = ()
    clinical_significance_code: str | None = None
    acknowledgement_reason: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CompoundIngredient:
    """One ``CompoundIngredientsLotNotUsed``: the ingredient and how much of it."""

    description: str
    quantity_value: Decimal
    quantity_code_list_qualifier: str
    quantity_unit_code: str
    item_code: str | None = None
    item_qualifier: str | None = None
    strength_value: str | None = None
    strength_form_code: str | None = None
    strength_unit_code: str | None = None
    dea_schedule: str | None = None
    drug_use_evaluations: tuple[DrugUseEvaluation, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class CompoundInformation:
    """``CompoundInformation``: the final dosage form (NCI code) and the ingredients."""

    dosage_form_code: str
    ingredients: tuple[CompoundIngredient, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Measurement:
    """One ``Observation/Measurement``: a LOINC-coded vital sign (e.g. 29463-7 body weight,
    8302-2 body height) with its value, UCUM unit and date."""

    vital_sign: str
    value: Decimal
    unit: str
    date: DateValue | None = None
    loinc_version: str | None = None
    ucum_version: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """``Observation``: the patient's measurements and notes on them."""

    measurements: tuple[Measurement, ...]
    notes: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Supervisor:
    """``Supervisor``: the prescriber's supervising practitioner. ``identifiers`` keeps every
    ``Identification`` child as (name, value) pairs."""

    kind: Literal["non_veterinarian", "veterinarian"]
    name: Name
    identifiers: tuple[tuple[str, str], ...] = ()
    address: Address | None = None
    communication_numbers: tuple[CommunicationNumber, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Facility:
    """``Facility``: where the patient stays (a long-term care facility, say)."""

    name: str | None
    identifiers: tuple[tuple[str, str], ...] = ()
    address: Address | None = None
    communication_numbers: tuple[CommunicationNumber, ...] = ()
    unit: str | None = None
    room: str | None = None
    bed: str | None = None


# -- MedicationPrescribed's parts ------------------------------------------------------------


def parse_do_not_fill(medication: Children, path: str) -> DoNotFill | None:
    """``DoNotFill`` of a ``MedicationPrescribed`` (its children ``medication``)."""
    el = single(medication, "DoNotFill", path)
    if el is None:
        return None
    where = f"{path}/DoNotFill"
    # in_code_list checked that the value is one of the Literal's
    return cast("DoNotFill", in_code_list(leaf(el, where, 1), DO_NOT_FILL, where))


def parse_need_no_later_than(medication: Children, path: str) -> NeedNoLaterThan | None:
    el = single(medication, "NeedNoLaterThan", path)
    if el is None:
        return None
    path = f"{path}/NeedNoLaterThan"
    children = walk(el, _NEED_NO_LATER_THAN, path)
    date_el = children["NeededNoLaterThanDate"][0]
    where = f"{path}/NeededNoLaterThanDate"
    # a plain xsd:date or dateTime, or (as other dates of the standard) the Date/DateTime choice
    date = (
        date_value(date_el, where) if len(date_el) else _date_text(leaf(date_el, where, 40), where)
    )
    return NeedNoLaterThan(
        date,
        tuple(
            leaf(item, where, FREE_TEXT_MAX)
            for item, where in items(children, "NeededNoLaterThanReason", path)
        ),
    )


def _date_text(value: str, path: str) -> DateValue:
    if "T" not in value:
        try:
            return DateValue(parse_date(value))
        except ValueError:
            raise StandardViolationError("invalid date", path) from None
    try:
        moment, written = parse_datetime(value)
    except ValueError:
        raise StandardViolationError("invalid dateTime", path) from None
    return DateValue(written, moment)


def parse_prior_authorization(medication: Children, path: str) -> PriorAuthorization | None:
    number = single(medication, "PriorAuthorization", path)
    status = single(medication, "PriorAuthorizationStatus", path)
    if number is None and status is None:
        return None
    where = f"{path}/PriorAuthorizationStatus"
    return PriorAuthorization(
        None if number is None else leaf(number, f"{path}/PriorAuthorization", _ID_MAX),
        None
        if status is None
        else cast(
            "PriorAuthorizationStatus",
            in_code_list(leaf(status, where, 1), PRIOR_AUTHORIZATION_STATUSES, where),
        ),
    )


def parse_drug_use_evaluation(el: etree._Element, path: str) -> DrugUseEvaluation:
    children = walk(el, _DUE, path)
    return DrugUseEvaluation(
        text(children, "ServiceReasonCode", path, _DUR_CODE_MAX),
        opt_text(children, "ProfessionalServiceCode", path, _DUR_CODE_MAX),
        opt_text(children, "ServiceResultCode", path, _DUR_CODE_MAX),
        tuple(_co_agent(item, where) for item, where in items(children, "CoAgent", path)),
        opt_text(children, "ClinicalSignificanceCode", path, 1),
        opt_text(children, "AcknowledgementReason", path, FREE_TEXT_MAX),
    )


def _co_agent(el: etree._Element, path: str) -> CoAgent:
    code = walk(el, _CO_AGENT, path)["CoAgentCode"][0]
    values = walk_leaves(code, _CO_AGENT_CODE, f"{path}/CoAgentCode")
    return CoAgent(values["Code"], values["Qualifier"], values.get("Description"))


def parse_compound_information(
    el: etree._Element,
    path: str,
    quantity: _QuantityReader,
    code_only: _CodeReader,
    dea_schedules: frozenset[str],
) -> CompoundInformation:
    """``CompoundInformation``; ``quantity`` and ``code_only`` are the readers of
    ``MedicationPrescribed`` (an ingredient's quantity and codes are checked as the order's)."""
    children = walk(el, _COMPOUND, path)
    return CompoundInformation(
        text(children, "FinalCompoundPharmaceuticalDosageForm", path, _CODE_MAX),
        tuple(
            _ingredient(item, where, quantity, code_only, dea_schedules)
            for item, where in items(children, "CompoundIngredientsLotNotUsed", path)
        ),
    )


def _ingredient(
    el: etree._Element,
    path: str,
    quantity: _QuantityReader,
    code_only: _CodeReader,
    dea_schedules: frozenset[str],
) -> CompoundIngredient:
    children = walk(el, _COMPOUND_LOT, path)
    where = f"{path}/CompoundIngredient"
    ingredient = walk(children["CompoundIngredient"][0], _COMPOUND_INGREDIENT, where)
    item = ingredient.get("ItemNumber")
    item_values = walk_leaves(item[0], _ITEM_NUMBER, f"{where}/ItemNumber") if item else {}
    strength = ingredient.get("Strength")
    strength_values = _strength(strength[0], f"{where}/Strength", code_only) if strength else {}
    schedule = ingredient.get("DEASchedule")
    value, qualifier, unit = quantity(children["Quantity"][0], f"{path}/Quantity")
    return CompoundIngredient(
        text(ingredient, "CompoundIngredientItemDescription", where, DRUG_DESCRIPTION_MAX),
        value,
        qualifier,
        unit,
        item_values.get("Code"),
        item_values.get("Qualifier"),
        strength_values.get("value"),
        strength_values.get("form"),
        strength_values.get("unit"),
        code_only(schedule[0], f"{where}/DEASchedule", dea_schedules) if schedule else None,
        tuple(
            parse_drug_use_evaluation(due, due_path)
            for due, due_path in items(children, "DrugUseEvaluation", path)
        ),
    )


_ITEM_NUMBER = Spec(req("Code", _CODE_MAX), req("Qualifier", _CODE_MAX))
_STRENGTH = Spec(opt("StrengthValue"), opt("StrengthForm"), opt("StrengthUnitOfMeasure"), open=True)


def _strength(el: etree._Element, path: str, code_only: _CodeReader) -> dict[str, str]:
    children = walk(el, _STRENGTH, path)
    found: dict[str, str] = {}
    value = opt_text(children, "StrengthValue", path, _CODE_MAX)
    if value is not None:
        found["value"] = value
    for key, name in (("form", "StrengthForm"), ("unit", "StrengthUnitOfMeasure")):
        group = children.get(name)
        if group:
            found[key] = code_only(group[0], f"{path}/{name}", None)
    return found


def parse_delivery_request(medication: Children, path: str) -> str | None:
    """``DeliveryRequest`` as sent (its code list could not be confirmed: kept, shown)."""
    el = single(medication, "DeliveryRequest", path)
    return None if el is None else leaf(el, f"{path}/DeliveryRequest", _ID_MAX)


# -- NewRx's parts ------------------------------------------------------------------------


def parse_observation(el: etree._Element, path: str) -> Observation:
    children = walk(el, _OBSERVATION, path)
    return Observation(
        tuple(_measurement(item, where) for item, where in items(children, "Measurement", path)),
        opt_text(children, "ObservationNotes", path, FREE_TEXT_MAX),
    )


def _measurement(el: etree._Element, path: str) -> Measurement:
    children = walk(el, _MEASUREMENT, path)
    date = children.get("ObservationDate")
    return Measurement(
        text(children, "VitalSign", path, _CODE_MAX),
        decimal_value(text(children, "Value", path), f"{path}/Value", 18),
        text(children, "UnitOfMeasure", path, _CODE_MAX),
        date_value(date[0], f"{path}/ObservationDate") if date else None,
        opt_text(children, "LOINCVersion", path, _CODE_MAX),
        opt_text(children, "UCUMVersion", path, _CODE_MAX),
    )


def parse_supervisor(el: etree._Element, path: str) -> Supervisor:
    name, child = only_child(el, _SUPERVISOR, path)
    path = f"{path}/{name}"
    person = walk(child, _SUPERVISOR_PERSON, path)
    identification = person.get("Identification")
    address = person.get("Address")
    numbers = person.get("CommunicationNumbers")
    return Supervisor(
        "veterinarian" if name == "Veterinarian" else "non_veterinarian",
        parse_name(person["Name"][0], f"{path}/Name"),
        _identifiers(identification[0], f"{path}/Identification") if identification else (),
        parse_address(address[0], f"{path}/Address") if address else None,
        parse_communication_numbers(numbers[0], f"{path}/CommunicationNumbers") if numbers else (),
    )


def parse_facility(el: etree._Element, path: str) -> Facility:
    children = walk(el, _FACILITY, path)
    identification = single(children, "Identification", path)
    address = single(children, "Address", path)
    numbers = single(children, "CommunicationNumbers", path)
    return Facility(
        _opt_leaf(children, "FacilityName", path, FREE_TEXT_MAX),
        () if identification is None else _identifiers(identification, f"{path}/Identification"),
        None if address is None else parse_address(address, f"{path}/Address"),
        ()
        if numbers is None
        else parse_communication_numbers(numbers, f"{path}/CommunicationNumbers"),
        _opt_leaf(children, "FacilityUnit", path, _ID_MAX),
        _opt_leaf(children, "Room", path, _ID_MAX),
        _opt_leaf(children, "Bed", path, _ID_MAX),
    )


def _opt_leaf(children: Children, name: str, path: str, max_len: int) -> str | None:
    el = single(children, name, path)
    return None if el is None else leaf(el, f"{path}/{name}", max_len)


def _identifiers(el: etree._Element, path: str) -> tuple[tuple[str, str], ...]:
    """Every identifier of an ``Identification`` as (name, value) pairs, each an1..35."""
    pairs = tuple(flatten(child, "") for child in el)
    flat = tuple(pair for group in pairs for pair in group)
    for name, value in flat:
        if len(value) > _ID_MAX:
            raise StandardViolationError(
                f"value longer than {_ID_MAX} characters", f"{path}/{name}"
            )
    return flat
