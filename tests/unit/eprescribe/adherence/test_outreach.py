"""The outreach list: who is below the threshold, lowest first, and its CSV."""

from __future__ import annotations

import datetime as dt
import io
from fractions import Fraction

from eprescribe.adherence.outreach import HEADER, below_threshold, write_outreach_csv
from eprescribe.adherence.pdc import Coverage

D = dt.date


def coverage(drug_class: str, index: dt.date, days: int, covered: int, dates: int) -> Coverage:
    return Coverage(drug_class, None, index, days, covered, dates, Fraction(covered, days))


RESULTS = {
    # 270/365 = 73.97 %
    "p-003": [coverage("statins", D(2026, 1, 1), 365, 270, 3)],
    # 60/120 = 50 % (RAS) and 120/120 = 100 % (statins, not listed)
    "p-001": [
        coverage("ras_antagonists", D(2026, 1, 1), 120, 60, 2),
        coverage("statins", D(2026, 1, 1), 120, 120, 4),
    ],
    # 90/365 = 24.66 % but one fill date: not counted by the measure
    "p-004": [coverage("statins", D(2026, 1, 1), 365, 90, 1)],
    # 292/365 = 80 % exactly: adherent
    "p-002": [coverage("diabetes", D(2026, 1, 1), 365, 292, 5)],
    # 219/292 = 75 %, a reference a spreadsheet would take for a formula
    "=1+1": [coverage("statins", D(2026, 3, 15), 292, 219, 2)],
}


def test_below_the_threshold_lowest_first() -> None:
    listed = below_threshold(RESULTS)
    assert [(e.patient, e.coverage.drug_class) for e in listed] == [
        ("p-001", "ras_antagonists"),
        ("p-003", "statins"),
        ("=1+1", "statins"),
    ]


def test_patients_the_measure_does_not_count_only_when_asked() -> None:
    listed = below_threshold(RESULTS, include_ineligible=True)
    assert [e.patient for e in listed] == ["p-004", "p-001", "p-003", "=1+1"]


def test_the_csv_exactly() -> None:
    out = io.StringIO(newline="")
    write_outreach_csv(below_threshold(RESULTS), out)
    assert HEADER[0] == "patient"
    assert out.getvalue() == (
        "patient,drug_class,index_date,days_in_period,days_covered,pdc_percent,eligible\r\n"
        "p-001,ras_antagonists,2026-01-01,120,60,50.0,yes\r\n"
        "p-003,statins,2026-01-01,365,270,73.9,yes\r\n"
        "'=1+1,statins,2026-03-15,292,219,75.0,yes\r\n"
    )


def test_an_empty_list_is_the_header_alone() -> None:
    out = io.StringIO(newline="")
    write_outreach_csv([], out)
    assert out.getvalue() == ",".join(HEADER) + "\r\n"
