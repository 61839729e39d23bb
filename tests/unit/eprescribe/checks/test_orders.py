"""The same order sent again under another MessageID."""

from __future__ import annotations

import dataclasses
import datetime as dt

from eprescribe.checks import Severity

from .helpers import active, codes, context, finding


def test_an_order_number_seen_before_for_the_patient_and_drug_is_a_warning() -> None:
    ctx = dataclasses.replace(
        context(), prescriber_order_number="ORD-7", same_order=("rx-2", "rx-1")
    )
    found = finding(ctx, "DUPLICATE_ORDER")
    assert found.severity is Severity.WARNING
    assert "ORD-7" in found.message
    assert found.evidence == {
        "prescriber_order_number": "ORD-7",
        "other_prescription_ids": ["rx-1", "rx-2"],
    }


def test_a_new_order_number_is_no_finding() -> None:
    ctx = dataclasses.replace(context(), prescriber_order_number="ORD-8")
    assert "DUPLICATE_ORDER" not in codes(ctx)


def test_more_open_prescriptions_than_compared_is_said() -> None:
    at = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    pending = tuple(
        dataclasses.replace(active("lisinopril 10 MG Oral Tablet", f"rx-{n}"), pending_since=at)
        for n in range(3)
    )
    ctx = dataclasses.replace(context(), active=pending, pending_omitted=7)
    found = finding(ctx, "PICTURE_INCOMPLETE")
    assert found.severity is Severity.WARNING
    assert "10 open prescriptions" in found.message
    assert found.evidence == {"pending_compared": 3, "pending_omitted": 7}
    assert "PICTURE_INCOMPLETE" not in codes(dataclasses.replace(ctx, pending_omitted=0))
