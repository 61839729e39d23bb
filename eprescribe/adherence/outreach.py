"""The outreach list: patients whose PDC of a drug class is below the 80 % threshold, lowest
first, and the same list as CSV for the staff who call them.

Only what the caller passes goes into the list: a patient reference (the caller's choice; an
identifier rather than a name keeps the file to the minimum necessary) and the PDC figures.
Patients the measure does not count (one fill date only) are left out unless asked for: the
measure says nothing of them. A text cell that a spreadsheet would read as a formula (starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading ``'``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from ..spreadsheet import safe_cell
from .pdc import Coverage, percent

#: the CSV's header row
HEADER = (
    "patient",
    "drug_class",
    "index_date",
    "days_in_period",
    "days_covered",
    "pdc_percent",
    "eligible",
)

__all__ = ["HEADER", "OutreachEntry", "below_threshold", "write_outreach_csv"]


@dataclass(frozen=True, slots=True)
class OutreachEntry:
    patient: str
    coverage: Coverage


def below_threshold(
    results: Mapping[str, Iterable[Coverage]], *, include_ineligible: bool = False
) -> list[OutreachEntry]:
    """The class results of ``results`` (patient reference → the patient's per-class PDC)
    below the threshold, ordered by PDC ascending, then patient, then class."""
    entries = [
        OutreachEntry(patient, coverage)
        for patient, coverages in results.items()
        for coverage in coverages
        if not coverage.adherent and (coverage.eligible or include_ineligible)
    ]
    return sorted(entries, key=lambda e: (e.coverage.pdc, e.patient, e.coverage.drug_class))


def write_outreach_csv(entries: Iterable[OutreachEntry], out: TextIO) -> None:
    """``entries`` as CSV on ``out`` (opened with ``newline=""``): the :data:`HEADER` row, then
    one row per entry, the PDC as a percentage with one decimal, rounded down."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for entry in entries:
        coverage = entry.coverage
        writer.writerow(
            (
                safe_cell(entry.patient),
                safe_cell(coverage.drug_class),
                coverage.index_date.isoformat(),
                coverage.days_in_period,
                coverage.days_covered,
                percent(coverage.pdc),
                "yes" if coverage.eligible else "no",
            )
        )
