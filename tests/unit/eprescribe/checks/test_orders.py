"""The same order sent again under another MessageID."""

from __future__ import annotations

import dataclasses

from eprescribe.checks import Severity

from .helpers import codes, context, finding


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
