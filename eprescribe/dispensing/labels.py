"""The prescription label: what it says, in which order, and the rules behind its dates and
cautions.

Federal floor (FD&C Act 503(b)(2); 21 CFR 1306.14 and 1306.24 for controlled substances):
pharmacy name and address, Rx (serial) number, date of the initial or current fill, prescriber,
patient, directions and cautionary statements. States add more (the phone number, drug and
strength, quantity, the dispensed product's NDC and manufacturer, refills left, a discard-after
date), and this label carries those too.

``label_text`` is the one canonical text: the pharmacist's product check compares it and the PDF
prints exactly its lines, so what was checked is what the patient gets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Final, Literal

from eprescribe.dispensing.barcodes import rx_barcode_text
from eprescribe.drugs import SCHEDULE_CODES, SCHEDULE_LABELS, Drug, DrugReference, normalize_ndc

__all__ = [
    "FEDERAL_TRANSFER_CAUTION",
    "LabelContent",
    "LabelField",
    "auxiliary_warnings",
    "cautionary_statements",
    "discard_after",
    "label_fields",
    "label_lines",
    "label_text",
]

#: 21 CFR 290.5, required on Schedule II, III and IV drugs, word for word.
FEDERAL_TRANSFER_CAUTION: Final = (
    "Caution: Federal law prohibits the transfer of this drug to any person other than the "
    "patient for whom it was prescribed."
)
_TRANSFER_CAUTION_SCHEDULES: Final = frozenset(
    {SCHEDULE_CODES["CII"], SCHEDULE_CODES["CIII"], SCHEDULE_CODES["CIV"]}
)
_REQUIRED_TEXT: Final = (
    "pharmacy_name",
    "pharmacy_phone",
    "patient_name",
    "drug_description",
    "quantity_unit",
    "directions",
    "prescriber_name",
)


def discard_after(fill_date: dt.date, product_expiry: dt.date | None) -> dt.date:
    """The label's discard-after (beyond-use) date: one year from the fill date or the
    product's expiry, whichever comes first.

    This is the common beyond-use rule for a product moved from the manufacturer's container
    into a vial (the USP General Notices' dispensing rule, which most state boards adopt): the
    container no longer protects it as the original did, and it can never outlast its own
    expiry. A fill on 29 February takes 28 February of the next year.
    """
    try:
        one_year = fill_date.replace(year=fill_date.year + 1)
    except ValueError:  # 29 February
        one_year = fill_date.replace(year=fill_date.year + 1, day=28)
    return one_year if product_expiry is None else min(one_year, product_expiry)


def cautionary_statements(dea_schedule: str | None) -> tuple[str, ...]:
    """Statements the law requires for a drug of this schedule (NCI code, as ``Drug``): the
    federal transfer caution for Schedule II to IV, nothing for C-V or a drug not controlled
    (21 CFR 290.5 names II, III and IV only)."""
    return (FEDERAL_TRANSFER_CAUTION,) if dea_schedule in _TRANSFER_CAUTION_SCHEDULES else ()


def auxiliary_warnings(reference: DrugReference, drug: Drug) -> tuple[str, ...]:
    """The auxiliary warnings the drug reference gives for ``drug``, most important first.

    They come from ``eprescribe/drugs/data/auxiliary.json`` by ingredient, class, route and
    dose form, so a product the operator imported from the FDA NDC Directory gets the
    warnings of its classes without anyone listing it.
    """
    return reference.auxiliary_warnings(drug)


@dataclasses.dataclass(frozen=True, slots=True)
class LabelContent:
    """Everything one prescription label says, as dispensed.

    ``ndc`` is the dispensed package's NDC, kept in the 11-digit 5-4-2 form with hyphens
    (any form ``normalize_ndc`` reads unambiguously is accepted). ``fill_number`` is 0 for the
    original fill, n for the n-th refill. ``dea_schedule`` is the NCI schedule code, as on
    ``Drug``, or None for a drug that is not controlled. ``auxiliary_warnings`` come from
    ``auxiliary_warnings``; the legally required cautions are derived from the schedule, not
    passed in, so no caller can leave them out. ``large_print`` is the patient's preference.
    """

    pharmacy_name: str
    pharmacy_address: tuple[str, ...]
    pharmacy_phone: str
    rx_number: str
    fill_date: dt.date
    fill_number: int
    refills_left: int
    patient_name: str
    drug_description: str
    strength: str
    ndc: str
    manufacturer: str | None
    quantity: Decimal
    quantity_unit: str
    directions: str
    prescriber_name: str
    discard_after: dt.date
    dea_schedule: str | None = None
    auxiliary_warnings: tuple[str, ...] = ()
    large_print: bool = False

    def __post_init__(self) -> None:
        for name in _REQUIRED_TEXT:
            _require_text(getattr(self, name), name)
        if not self.pharmacy_address or not all(line.strip() for line in self.pharmacy_address):
            raise ValueError("the pharmacy address is required on a label")
        if not (self.rx_number.isascii() and self.rx_number.isalnum()):
            raise ValueError("an Rx number is letters and digits only (it becomes a barcode)")
        ndc = normalize_ndc(self.ndc)
        if ndc is None:
            raise ValueError("the dispensed NDC must be an 11-digit or hyphenated NDC")
        object.__setattr__(self, "ndc", f"{ndc[:5]}-{ndc[5:9]}-{ndc[9:]}")
        if self.fill_number < 0 or self.refills_left < 0:
            raise ValueError("fill number and refills left cannot be negative")
        if self.quantity <= 0:
            raise ValueError("the quantity dispensed must be positive")
        if self.dea_schedule is not None and self.dea_schedule not in SCHEDULE_LABELS:
            raise ValueError(f"unknown DEA schedule code {self.dea_schedule!r}")
        if self.dea_schedule == SCHEDULE_CODES["CI"]:
            raise ValueError("a Schedule I substance is not dispensed on a prescription")
        if self.discard_after < self.fill_date:
            raise ValueError("the discard-after date is before the fill date")

    @property
    def barcode_text(self) -> str:
        return rx_barcode_text(self.rx_number)

    @property
    def cautions(self) -> tuple[str, ...]:
        return cautionary_statements(self.dea_schedule)


#: What each line of the label is, for a printer that sets some of them apart.
LabelField = Literal[
    "pharmacy",
    "address",
    "rx",
    "patient",
    "directions",
    "drug",
    "product",
    "quantity",
    "prescriber",
    "discard_after",
    "caution",
    "auxiliary",
]
_SEPARATOR: Final = " | "


def label_fields(content: LabelContent) -> tuple[tuple[LabelField, str], ...]:
    """The label's lines in printing order, each with what it is.

    Short items share a line as on any vial label (Rx number and fill date; NDC and
    manufacturer; quantity and refills; discard date and schedule), so a typical label fits one
    4 x 2.5 in page at a readable size. Lines are logical: the PDF may wrap a long one over
    several printed lines, never cut it. Runs of whitespace become one space, so the text
    compares the same after a round trip through the PDF.
    """
    fill = "original" if content.fill_number == 0 else f"refill {content.fill_number}"
    product = [f"NDC: {content.ndc}"]
    if content.manufacturer:
        product.append(f"Mfr: {content.manufacturer}")
    discard = [f"Discard after: {_us_date(content.discard_after)}"]
    if content.dea_schedule is not None:
        discard.append(f"Schedule {SCHEDULE_LABELS[content.dea_schedule]}")
    fields: list[tuple[LabelField, str]] = [
        ("pharmacy", content.pharmacy_name),
        ("address", ", ".join(content.pharmacy_address)),
        ("address", f"Phone: {content.pharmacy_phone}"),
        (
            "rx",
            f"Rx: {content.rx_number}{_SEPARATOR}Filled: {_us_date(content.fill_date)} ({fill})",
        ),
        ("patient", content.patient_name),
        ("directions", content.directions),
        ("drug", _drug_line(content)),
        ("product", _SEPARATOR.join(product)),
        (
            "quantity",
            f"Qty: {_quantity(content.quantity)} {content.quantity_unit}"
            f"{_SEPARATOR}Refills left: {content.refills_left}",
        ),
        ("prescriber", f"Prescriber: {content.prescriber_name}"),
        ("discard_after", _SEPARATOR.join(discard)),
        *(("caution", text) for text in content.cautions),
        *(("auxiliary", text) for text in dict.fromkeys(content.auxiliary_warnings)),
    ]
    return tuple((field, " ".join(text.split())) for field, text in fields)


def label_lines(content: LabelContent) -> tuple[str, ...]:
    """The label's lines in printing order (see ``label_fields``)."""
    return tuple(text for _, text in label_fields(content))


def label_text(content: LabelContent) -> str:
    """The canonical plain text of the label: its lines, one per line, in printing order."""
    return "\n".join(label_lines(content)) + "\n"


def _drug_line(content: LabelContent) -> str:
    """The description with its strength, unless the description already states it (RxNorm
    names such as ``atorvastatin 20 MG Oral Tablet`` do)."""
    strength = content.strength.strip()
    if not strength or strength.lower() in content.drug_description.lower():
        return content.drug_description
    return f"{content.drug_description} {strength}"


def _quantity(value: Decimal) -> str:
    """``30``, ``2.5``, ``100``: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


def _us_date(value: dt.date) -> str:
    """MM/DD/YYYY, the form US patients read on their labels."""
    return value.strftime("%m/%d/%Y")


def _require_text(value: str, name: str) -> None:
    if not value.strip():
        raise ValueError(f"{name} is required on a label")
