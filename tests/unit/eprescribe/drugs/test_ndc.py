"""NDC formats: the three 10-digit layouts, 11-digit codes, ambiguity, invalid input."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from eprescribe.drugs import (
    Drug,
    DrugReference,
    ndc_candidates,
    ndc_format_valid,
    normalize_ndc,
)


@pytest.mark.parametrize(
    ("code", "eleven"),
    [
        ("0002-7597-01", "00002759701"),  # 4-4-2
        ("50242-040-62", "50242004062"),  # 5-3-2
        ("60575-4112-1", "60575411201"),  # 5-4-1
        ("50242-0040-62", "50242004062"),  # 11-digit, hyphenated 5-4-2
        ("50242004062", "50242004062"),  # 11-digit
        (" 0002-7597-01 ", "00002759701"),  # surrounding space from a form field
    ],
)
def test_normalize(code: str, eleven: str) -> None:
    assert normalize_ndc(code) == eleven
    assert ndc_format_valid(code)
    assert ndc_candidates(code) == (eleven,)


def test_unhyphenated_ten_digits_is_valid_but_ambiguous() -> None:
    assert normalize_ndc("0002759701") is None
    assert ndc_format_valid("0002759701")
    assert ndc_candidates("0002759701") == ("00002759701", "00027059701", "00027597001")


@pytest.mark.parametrize(
    "code",
    [
        "",
        "123",
        "000275970",  # 9 digits
        "000027597011",  # 12 digits
        "0002-759701",  # two segments
        "002-7597-01",  # 3-4-2
        "00002-07597-01",  # 5-5-2
        "0002-7597-0a",
        "0002 7597 01",
        "NDC 0002-7597-01",
        "0002_7597_01",
    ],
)
def test_invalid_formats(code: str) -> None:
    assert normalize_ndc(code) is None
    assert not ndc_format_valid(code)
    assert ndc_candidates(code) == ()


def _with_ndcs(drug: Drug, *ndcs: str) -> Drug:
    return dataclasses.replace(drug, ndcs=ndcs)


def test_lookup_by_every_layout(reference: DrugReference, drug: Callable[[str], Drug]) -> None:
    sertraline = _with_ndcs(drug("sertraline 50 MG Oral Tablet"), "99999010130")
    ref = DrugReference(reference.vocabulary, [sertraline])
    for code in ("99999-101-30", "99999-0101-30", "99999010130", "9999910130"):
        assert ref.by_ndc(code) == sertraline, code
    assert ref.by_ndc("99999-101-31") is None
    assert ref.by_ndc("not an ndc") is None


def test_ambiguous_ten_digits_resolves_only_when_one_reading_is_known(
    reference: DrugReference, drug: Callable[[str], Drug]
) -> None:
    # "9999910130" reads as 09999910130 (4-4-2), 99999010130 (5-3-2) or 99999101300 (5-4-1).
    sertraline = _with_ndcs(drug("sertraline 50 MG Oral Tablet"), "99999010130")
    fluoxetine = _with_ndcs(drug("fluoxetine 20 MG Oral Capsule"), "99999101300")
    both = DrugReference(reference.vocabulary, [sertraline, fluoxetine])
    assert both.by_ndc("9999910130") is None
    assert both.by_ndc("99999-101-30") == sertraline
    assert both.by_ndc("99999-1013-0") == fluoxetine
    only_one = DrugReference(reference.vocabulary, [fluoxetine])
    assert only_one.by_ndc("9999910130") == fluoxetine
