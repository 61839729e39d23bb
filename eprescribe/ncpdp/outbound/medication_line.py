"""``MedicationRequested`` and ``MedicationDispensed`` (NCPDP SCRIPT Standard 2017071).

The medication a pharmacy proposes in an RxChangeRequest, and the one it last dispensed in an
RxRenewalRequest. Both share one shape here, written and read in this order: DrugDescription,
DrugCoded, Quantity, DaysSupply, LastFillDate, Substitutions, NumberOfRefills, Note, Sig
(``SigText``), PharmacyRequestedRefills. The order follows MedicationPrescribed's and public
2017071 samples of both elements (which carry no WrittenDate); the full content models are NCPDP
member material and were not confirmed, so the hub writes only these parts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from lxml import etree

from eprescribe.ncpdp.errors import ContentInvalidError
from eprescribe.ncpdp.medication import (
    SUBSTITUTIONS,
    DrugDbCode,
    MedicationPrescribed,
    ProductCode,
    Quantity,
    Strength,
    parse_drug_coded,
    parse_quantity,
)
from eprescribe.ncpdp.outbound.write import (
    NOTE_MAX,
    add_leaf,
    an_text,
    count,
    free_text,
    write_drug_coded,
    write_quantity,
    write_sig,
)
from eprescribe.ncpdp.sig import parse_sig
from eprescribe.ncpdp.structure import (
    Spec,
    date_value,
    in_code_list,
    integer_value,
    opt,
    opt_text,
    req,
    text,
    walk,
)
from eprescribe.ncpdp.types import DRUG_DESCRIPTION_MAX

__all__ = ["MedicationLine", "parse_medication_line", "write_medication_line"]

_LINE = Spec(
    req("DrugDescription"),
    opt("DrugCoded"),
    req("Quantity"),
    opt("DaysSupply"),
    opt("LastFillDate"),
    req("Substitutions"),
    opt("NumberOfRefills"),
    opt("Note"),
    req("Sig"),
    opt("PharmacyRequestedRefills"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class MedicationLine:
    """A MedicationRequested or MedicationDispensed.

    ``pharmacy_requested_refills`` is for a MedicationDispensed in an RxRenewalRequest: how
    many refills the pharmacy asks for (``None``: as the prescriber sees fit).
    """

    drug_description: str
    quantity: Quantity
    substitutions: str
    sig_text: str
    product_code: ProductCode | None = None
    strength: Strength | None = None
    drug_db_code: DrugDbCode | None = None
    dea_schedule: str | None = None
    days_supply: int | None = None
    last_fill_date: dt.date | None = None
    number_of_refills: int | None = None
    note: str | None = None
    pharmacy_requested_refills: int | None = None

    def __post_init__(self) -> None:
        if self.substitutions not in SUBSTITUTIONS:
            raise ValueError("unknown Substitutions code")
        if self.quantity.value <= 0:
            raise ValueError("quantity must be greater than zero")

    @classmethod
    def of(
        cls,
        medication: MedicationPrescribed,
        *,
        last_fill_date: dt.date | None = None,
        pharmacy_requested_refills: int | None = None,
    ) -> MedicationLine:
        """The line for a stored MedicationPrescribed (e.g. what was dispensed as written)."""
        return cls(
            drug_description=medication.drug_description,
            quantity=medication.quantity,
            substitutions=medication.substitutions,
            sig_text=medication.sig.text,
            product_code=medication.product_code,
            strength=medication.strength,
            drug_db_code=medication.drug_db_code,
            dea_schedule=medication.dea_schedule,
            days_supply=medication.days_supply,
            last_fill_date=last_fill_date,
            pharmacy_requested_refills=pharmacy_requested_refills,
        )


def write_medication_line(
    parent: etree._Element, tag: str, line: MedicationLine, path: str
) -> None:
    """Append ``line`` as a ``tag`` element (MedicationRequested or MedicationDispensed);
    ``path`` is that element's XPath, for refusals."""
    el = etree.SubElement(parent, tag)
    add_leaf(
        el,
        "DrugDescription",
        an_text(line.drug_description, DRUG_DESCRIPTION_MAX, f"{path}/DrugDescription"),
    )
    write_drug_coded(
        el, line.product_code, line.strength, line.drug_db_code, line.dea_schedule, path
    )
    write_quantity(el, line.quantity, path)
    if line.days_supply is not None:
        add_leaf(el, "DaysSupply", count(line.days_supply, 3, f"{path}/DaysSupply"))
    if line.last_fill_date is not None:
        add_leaf(etree.SubElement(el, "LastFillDate"), "Date", line.last_fill_date.isoformat())
    add_leaf(el, "Substitutions", line.substitutions)
    if line.number_of_refills is not None:
        add_leaf(el, "NumberOfRefills", count(line.number_of_refills, 2, f"{path}/NumberOfRefills"))
    if line.note is not None and (note := free_text(line.note, NOTE_MAX)):
        add_leaf(el, "Note", note)
    write_sig(el, line.sig_text, path)
    if line.pharmacy_requested_refills is not None:
        where = f"{path}/PharmacyRequestedRefills"
        add_leaf(el, "PharmacyRequestedRefills", count(line.pharmacy_requested_refills, 2, where))


def parse_medication_line(el: etree._Element, path: str) -> MedicationLine:
    """Validate a MedicationRequested or MedicationDispensed element."""
    children = walk(el, _LINE, path)
    product_code, strength, drug_db_code, dea_schedule = parse_drug_coded(children, path)
    days_supply = opt_text(children, "DaysSupply", path)
    last_fill = children.get("LastFillDate")
    refills = opt_text(children, "NumberOfRefills", path)
    requested = opt_text(children, "PharmacyRequestedRefills", path)
    quantity = parse_quantity(children["Quantity"][0], f"{path}/Quantity")
    if quantity.value <= 0:
        raise ContentInvalidError("quantity must be greater than zero", f"{path}/Quantity/Value")
    return MedicationLine(
        drug_description=text(children, "DrugDescription", path, DRUG_DESCRIPTION_MAX),
        quantity=quantity,
        substitutions=in_code_list(
            text(children, "Substitutions", path), SUBSTITUTIONS, f"{path}/Substitutions"
        ),
        sig_text=parse_sig(children["Sig"][0], f"{path}/Sig").text,
        product_code=product_code,
        strength=strength,
        drug_db_code=drug_db_code,
        dea_schedule=dea_schedule,
        days_supply=None
        if days_supply is None
        else integer_value(days_supply, f"{path}/DaysSupply", 3),
        last_fill_date=None
        if last_fill is None
        else date_value(last_fill[0], f"{path}/LastFillDate").date,
        number_of_refills=None
        if refills is None
        else integer_value(refills, f"{path}/NumberOfRefills", 2),
        note=opt_text(children, "Note", path, NOTE_MAX),
        pharmacy_requested_refills=None
        if requested is None
        else integer_value(requested, f"{path}/PharmacyRequestedRefills", 2),
    )
