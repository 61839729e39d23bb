"""``MedicationPrescribed`` (NCPDP SCRIPT Standard 2017071).

Checked in schema order: DrugDescription, DrugCoded, Quantity, DaysSupply, WrittenDate,
LastFillDate, Substitutions, NumberOfRefills, Diagnosis (0..2), Note, Sig, then
PrescriberCheckedREMS and OtherMedicationDate. The clinical parts a pharmacist must see
(DoNotFill, NeedNoLaterThan, CompoundInformation, PriorAuthorization and its status,
DrugUseEvaluation, DeliveryRequest) are read by :mod:`eprescribe.ncpdp.clinical` wherever they
stand among these (their position in the 2017071 sequence is not confirmed from public
material). Other optional children of the content model (REMS details, ...) are tolerated
without content validation.

Code lists enforced here, because the XSD does not check them: DEASchedule (NCI), Quantity
CodeListQualifier, QuantityUnitOfMeasure (must be an NCI code, ``C`` + digits), ProductCode
Qualifier, Substitutions, Diagnosis ClinicalInformationQualifier and diagnosis code Qualifier.
The NDC format, NPI/DEA check digits and schedule rules are prescription checks, not rejections.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Final, TypeAlias

from lxml import etree

from eprescribe.ncpdp.clinical import (
    CompoundInformation,
    DoNotFill,
    DrugUseEvaluation,
    NeedNoLaterThan,
    PriorAuthorization,
    parse_compound_information,
    parse_delivery_request,
    parse_do_not_fill,
    parse_drug_use_evaluation,
    parse_need_no_later_than,
    parse_prior_authorization,
)
from eprescribe.ncpdp.errors import StandardViolationError
from eprescribe.ncpdp.sig import Sig, parse_sig
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Children,
    Slot,
    Spec,
    date_value,
    decimal_value,
    in_code_list,
    integer_value,
    items,
    leaf,
    only_leaf,
    opt,
    opt_text,
    req,
    single,
    text,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX, DateValue

__all__ = [
    "CONTROLLED_SCHEDULES",
    "DEA_SCHEDULES",
    "Code",
    "Diagnosis",
    "DrugDbCode",
    "MedicationPrescribed",
    "ProductCode",
    "Quantity",
    "Strength",
    "parse_drug_coded",
    "parse_medication_prescribed",
    "parse_quantity",
]

#: NCI codes of ``DEASchedule/Code``: Schedule I, II, III, IV, V and Unspecified.
DEA_SCHEDULES: Final = frozenset({"C48672", "C48675", "C48676", "C48677", "C48679", "C38046"})
#: The schedules that make a drug a controlled substance.
CONTROLLED_SCHEDULES: Final = frozenset({"C48672", "C48675", "C48676", "C48677", "C48679"})
QUANTITY_QUALIFIERS: Final = frozenset({"38", "40", "87", "QS", "CF", "UQ", "QT"})
PRODUCT_QUALIFIERS: Final = frozenset({"ND", "UP", "RT", "UN", "NH", "DI", "GMP", "GPI", "GSP"})
SUBSTITUTIONS: Final = frozenset({"0", "1"})
CLINICAL_INFORMATION_QUALIFIERS: Final = frozenset({"1", "2"})
DIAGNOSIS_QUALIFIERS: Final = frozenset({"ABF", "DX", "LD"})
_NCI_CODE = re.compile(r"C\d{1,10}", re.ASCII)
_NOTE_MAX: Final = 210
_CODE_MAX: Final = 35

_MEDICATION = Spec(
    req("DrugDescription"),
    opt("DrugCoded"),
    req("Quantity"),
    opt("DaysSupply"),
    req("WrittenDate"),
    opt("LastFillDate"),
    req("Substitutions"),
    req("NumberOfRefills"),
    opt("Diagnosis", 2),
    opt("Note"),
    req("Sig"),
    Slot(("PrescriberCheckedREMS", "OtherMedicationDate"), 0, UNBOUNDED),
    open=True,
)
_DRUG_CODED = Spec(
    opt("ProductCode"), opt("Strength"), opt("DrugDBCode"), opt("DEASchedule"), open=True
)
_CODE_AND_QUALIFIER = Spec(req("Code", _CODE_MAX), req("Qualifier", _CODE_MAX))
_CODE_ONLY = Spec(req("Code", _CODE_MAX))
_STRENGTH = Spec(opt("StrengthValue"), opt("StrengthForm"), opt("StrengthUnitOfMeasure"), open=True)
_QUANTITY = Spec(req("Value"), req("CodeListQualifier"), req("QuantityUnitOfMeasure"))
_DIAGNOSIS = Spec(req("ClinicalInformationQualifier"), req("Primary"), opt("Secondary"))
_DIAGNOSIS_CODE = Spec(
    req("Code", _CODE_MAX), req("Qualifier", _CODE_MAX), opt("Description"), open=True
)


@dataclasses.dataclass(frozen=True, slots=True)
class ProductCode:
    """``DrugCoded/ProductCode``, kept as sent (an ND code that is not an NDC is a finding)."""

    code: str
    qualifier: str


@dataclasses.dataclass(frozen=True, slots=True)
class Strength:
    """``DrugCoded/Strength``: value as written, NCI form and unit codes."""

    value: str | None
    form_code: str | None
    unit_code: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class DrugDbCode:
    """``DrugCoded/DrugDBCode``, e.g. an RxNorm code qualified SCD or SBD."""

    code: str
    qualifier: str


@dataclasses.dataclass(frozen=True, slots=True)
class Quantity:
    """``Quantity``: value, code list qualifier and NCI unit code.

    A zero or negative value is well-formed but invalid in context; NewRx parsing rejects it
    (2000) once the whole message is structurally valid.
    """

    value: Decimal
    code_list_qualifier: str
    unit_code: str


@dataclasses.dataclass(frozen=True, slots=True)
class Code:
    """A diagnosis code (``Primary`` or ``Secondary``)."""

    code: str
    qualifier: str
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Diagnosis:
    """``Diagnosis``: who supplied it (1 prescriber, 2 pharmacy inferred) and the codes."""

    clinical_information_qualifier: str
    primary: Code
    secondary: Code | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MedicationPrescribed:
    """``MedicationPrescribed``: the drug, quantity, dates, refills, diagnoses and Sig."""

    drug_description: str
    product_code: ProductCode | None
    strength: Strength | None
    drug_db_code: DrugDbCode | None
    dea_schedule: str | None
    quantity: Quantity
    days_supply: int | None
    written_date: DateValue
    substitutions: str
    number_of_refills: int
    diagnoses: tuple[Diagnosis, ...]
    note: str | None
    sig: Sig
    prescriber_checked_rems: str | None = None
    #: Y do not fill, H hold (fill when the patient asks), E do not fill
    do_not_fill: DoNotFill | None = None
    need_no_later_than: NeedNoLaterThan | None = None
    compound: CompoundInformation | None = None
    prior_authorization: PriorAuthorization | None = None
    drug_use_evaluations: tuple[DrugUseEvaluation, ...] = ()
    delivery_request: str | None = None
    #: the fill statuses the prescriber asks to be told by RxFill (its ``RxFillIndicator``
    #: text, e.g. "All Fill Statuses Except Transferred"; read wherever it stands, its place
    #: in the 2017071 sequence not being confirmed from public material)
    rx_fill_indicator: str | None = None

    @property
    def controlled(self) -> bool:
        """True when the message itself marks the drug as Schedule I-V."""
        return self.dea_schedule in CONTROLLED_SCHEDULES


def parse_medication_prescribed(el: etree._Element, path: str) -> MedicationPrescribed:
    """Validate a ``MedicationPrescribed`` element and return its value object."""
    children = walk(el, _MEDICATION, path)
    product_code, strength, drug_db_code, dea_schedule = _drug_coded(children, path)
    days_supply = opt_text(children, "DaysSupply", path)
    rems = single(children, "PrescriberCheckedREMS", path)
    compound = single(children, "CompoundInformation", path)
    # Arguments by position, in field order: keywords cost noticeably more on this hot path.
    return MedicationPrescribed(
        text(children, "DrugDescription", path, DRUG_DESCRIPTION_MAX),
        product_code,
        strength,
        drug_db_code,
        dea_schedule,
        _quantity(children["Quantity"][0], f"{path}/Quantity"),
        None if days_supply is None else integer_value(days_supply, f"{path}/DaysSupply", 3),
        date_value(children["WrittenDate"][0], f"{path}/WrittenDate"),
        in_code_list(text(children, "Substitutions", path), SUBSTITUTIONS, f"{path}/Substitutions"),
        integer_value(text(children, "NumberOfRefills", path), f"{path}/NumberOfRefills", 2),
        tuple(_diagnosis(item, where) for item, where in items(children, "Diagnosis", path))
        if "Diagnosis" in children
        else (),
        opt_text(children, "Note", path, _NOTE_MAX),
        parse_sig(children["Sig"][0], f"{path}/Sig"),
        None if rems is None else leaf(rems, f"{path}/PrescriberCheckedREMS", _CODE_MAX),
        parse_do_not_fill(children, path),
        parse_need_no_later_than(children, path),
        None
        if compound is None
        else parse_compound_information(
            compound, f"{path}/CompoundInformation", _quantity_parts, _code_only, DEA_SCHEDULES
        ),
        parse_prior_authorization(children, path),
        tuple(
            parse_drug_use_evaluation(item, where)
            for item, where in items(children, "DrugUseEvaluation", path)
        )
        if "DrugUseEvaluation" in children
        else (),
        parse_delivery_request(children, path),
        _rx_fill_indicator(children, path),
    )


#: RxFillIndicator's length (an..50 is assumed: the reference gives none; unverified)
RX_FILL_INDICATOR_MAX: Final = 50


def _rx_fill_indicator(children: Children, path: str) -> str | None:
    found = single(children, "RxFillIndicator", path)
    if found is None:
        return None
    return leaf(found, f"{path}/RxFillIndicator", RX_FILL_INDICATOR_MAX)


# (product code, strength, drug DB code, DEA schedule) of a MedicationPrescribed
_DrugCoded: TypeAlias = tuple[ProductCode | None, Strength | None, DrugDbCode | None, str | None]
_NO_DRUG_CODED: Final[_DrugCoded] = (None, None, None, None)


def _drug_coded(medication: Children, path: str) -> _DrugCoded:
    group = medication.get("DrugCoded")
    if not group:
        return _NO_DRUG_CODED
    path = f"{path}/DrugCoded"
    children = walk(group[0], _DRUG_CODED, path)
    product = children.get("ProductCode")
    strength = children.get("Strength")
    db_code = children.get("DrugDBCode")
    schedule = children.get("DEASchedule")
    return (
        _product_code(product[0], f"{path}/ProductCode") if product else None,
        _strength(strength[0], f"{path}/Strength") if strength else None,
        _drug_db_code(db_code[0], f"{path}/DrugDBCode") if db_code else None,
        _code_only(schedule[0], f"{path}/DEASchedule", DEA_SCHEDULES) if schedule else None,
    )


def parse_drug_coded(medication: Children, path: str) -> _DrugCoded:
    """(product code, strength, drug DB code, DEA schedule) of the ``DrugCoded`` among a
    medication element's ``children`` (all ``None`` without one): shared with the other
    medication elements (MedicationRequested, MedicationDispensed)."""
    return _drug_coded(medication, path)


def parse_quantity(el: etree._Element, path: str) -> Quantity:
    """A ``Quantity`` element: shared with the other medication elements."""
    return _quantity(el, path)


def _product_code(el: etree._Element, path: str) -> ProductCode:
    values = walk_leaves(el, _CODE_AND_QUALIFIER, path)
    qualifier = in_code_list(values["Qualifier"], PRODUCT_QUALIFIERS, f"{path}/Qualifier")
    return ProductCode(values["Code"], qualifier)


def _drug_db_code(el: etree._Element, path: str) -> DrugDbCode:
    values = walk_leaves(el, _CODE_AND_QUALIFIER, path)
    return DrugDbCode(values["Code"], values["Qualifier"])


def _strength(el: etree._Element, path: str) -> Strength:
    children = walk(el, _STRENGTH, path)
    form = children.get("StrengthForm")
    unit = children.get("StrengthUnitOfMeasure")
    return Strength(
        opt_text(children, "StrengthValue", path),
        _code_only(form[0], f"{path}/StrengthForm") if form else None,
        _code_only(unit[0], f"{path}/StrengthUnitOfMeasure") if unit else None,
    )


def _code_only(el: etree._Element, path: str, allowed: frozenset[str] | None = None) -> str:
    code = only_leaf(el, _CODE_ONLY, path)[1]
    return code if allowed is None else in_code_list(code, allowed, f"{path}/Code")


def _quantity(el: etree._Element, path: str) -> Quantity:
    children = walk(el, _QUANTITY, path)
    value = decimal_value(text(children, "Value", path), f"{path}/Value", 11)
    unit_path = f"{path}/QuantityUnitOfMeasure"
    unit = _code_only(children["QuantityUnitOfMeasure"][0], unit_path)
    if _NCI_CODE.fullmatch(unit) is None:
        raise StandardViolationError("not an NCI unit code", f"{unit_path}/Code")
    qualifier = text(children, "CodeListQualifier", path)
    if qualifier not in QUANTITY_QUALIFIERS:
        raise StandardViolationError("value not in code list", f"{path}/CodeListQualifier")
    return Quantity(value, qualifier, unit)


def _quantity_parts(el: etree._Element, path: str) -> tuple[Decimal, str, str]:
    quantity = _quantity(el, path)
    return quantity.value, quantity.code_list_qualifier, quantity.unit_code


def _diagnosis(el: etree._Element, path: str) -> Diagnosis:
    children = walk(el, _DIAGNOSIS, path)
    qualifier = text(children, "ClinicalInformationQualifier", path)
    secondary = children.get("Secondary")
    return Diagnosis(
        in_code_list(
            qualifier, CLINICAL_INFORMATION_QUALIFIERS, f"{path}/ClinicalInformationQualifier"
        ),
        _diagnosis_code(children["Primary"][0], f"{path}/Primary"),
        _diagnosis_code(secondary[0], f"{path}/Secondary") if secondary else None,
    )


def _diagnosis_code(el: etree._Element, path: str) -> Code:
    values = walk_leaves(el, _DIAGNOSIS_CODE, path)
    qualifier = in_code_list(values["Qualifier"], DIAGNOSIS_QUALIFIERS, f"{path}/Qualifier")
    return Code(values["Code"], qualifier, values.get("Description"))
