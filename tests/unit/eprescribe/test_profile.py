"""The profile's pure rules: allergy entries, a prescription's allergies as entries, the
conditions its diagnoses name, a search's terms. Synthetic data only."""

from __future__ import annotations

import datetime as dt

import pytest

from eprescribe.ncpdp import Allergy, Code, Diagnosis
from eprescribe.profile import (
    CodeSystem,
    ProfileError,
    Severity,
    allergy_entry,
    conditions,
    from_prescription,
    search,
)


def test_an_entry_is_trimmed_and_coded_or_free_text() -> None:
    entry = allergy_entry("  penicillin   G ", "rxnorm", " 7980 ", " hives ", "severe")
    assert (entry.text, entry.code_system, entry.code) == (
        "penicillin G",
        CodeSystem.RXNORM,
        "7980",
    )
    assert (entry.reaction, entry.severity) == ("hives", Severity.SEVERE)
    assert entry.key == ("rxnorm", "7980")
    assert allergy_entry("Latex").key == ("text", "latex")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("  ",), "blank"),
        (("x" * 106,), "at most 105"),
        (("penicillin", "rxnorm"), "coded in RxNorm needs its code"),
        (("penicillin", "free_text", "7980"), "no code"),
        (("penicillin", "icd10", "Z88"), "code_system must be one of"),
        (("penicillin", "rxnorm", "79 80"), "one word"),
        (("penicillin", "free_text", None, None, "awful"), "severity must be one of"),
    ],
)
def test_entries_the_rules_refuse(args: tuple[str, ...], said: str) -> None:
    with pytest.raises(ProfileError, match=said):
        allergy_entry(*args)


def test_a_prescriptions_allergy_keeps_its_code_when_the_qualifier_is_known() -> None:
    coded = from_prescription(
        Allergy(
            drug_text="TESTCILLIN",
            drug_code="7980",
            drug_code_qualifier="RXN",
            reaction_text="Hives",
        )
    )
    assert coded is not None
    assert (coded.code_system, coded.code, coded.reaction) == (CodeSystem.RXNORM, "7980", "Hives")
    unknown = from_prescription(
        Allergy(drug_text="TESTSULFA", drug_code="1", drug_code_qualifier="ZZ")
    )
    assert unknown is not None
    assert (unknown.code_system, unknown.code) == (CodeSystem.FREE_TEXT, None)
    assert from_prescription(Allergy(adverse_event_text="Drug allergy")) is not None
    assert from_prescription(Allergy()) is None


class _Medication:
    def __init__(self, *diagnoses: Diagnosis) -> None:
        self.diagnoses = diagnoses


def test_conditions_are_each_diagnosis_once_the_first_description_kept() -> None:
    first = _Medication(
        Diagnosis("1", Code("I10", "ABF"), Code("E119", "ABF", "Type 2 diabetes")),
    )
    second = _Medication(Diagnosis("1", Code("i10", "ABF", "Essential hypertension")))
    found = conditions([first, second])  # type: ignore[list-item]
    assert [(c.code, c.description) for c in found] == [
        ("I10", "Essential hypertension"),
        ("E119", "Type 2 diabetes"),
    ]


def test_a_search_reads_names_dates_and_phones() -> None:
    assert (search("Smith", None, None).last, search("Smith", None, None).first) == ("smith", None)
    both = search("Smíth, Jo", None, None)
    assert (both.last, both.first) == ("smith", "jo")
    spaced = search("Jo Smith", None, None)
    assert (spaced.last, spaced.first) == ("smith", "jo")
    assert search(None, "1980-01-31", None).born == dt.date(1980, 1, 31)
    assert search(None, None, "(555) 555-0123").phone == "+15555550123"
    assert search("Smith", "1980-01-31", "555 555 0123").criteria == ["name", "birth_date", "phone"]
    for name, born, phone in [(None, None, None), ("!!", None, None), (None, "1980-1-1", None),
                              (None, "1980-02-30", None), (None, None, "12")]:  # fmt: skip
        with pytest.raises(ProfileError):
            search(name, born, phone)
