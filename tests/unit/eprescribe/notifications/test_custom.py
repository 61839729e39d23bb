"""A pharmacy's own templates: each rule that refuses one (with its code), the preview with
synthetic values, and the fall-back to the default when a stored one no longer passes."""

from __future__ import annotations

import pytest

from eprescribe.notifications import DEFAULT_TEMPLATES, EventKind, NotificationTemplate
from eprescribe.notifications.custom import (
    SAMPLES,
    SMS_MAX_SEGMENTS,
    Refused,
    build,
    check,
    effective,
    preview,
)

K = EventKind
READY = K.READY_FOR_PICKUP


def ready(
    sms: str, subject: str = "Ready", text: str = "Hello $first_name."
) -> NotificationTemplate:
    return build(READY, "es", sms, subject, text)


@pytest.mark.parametrize("template", list(DEFAULT_TEMPLATES.values()), ids=str)
def test_every_default_passes(template: NotificationTemplate) -> None:
    check(template, allow_drug_names=False)


@pytest.mark.parametrize(
    ("sms", "subject", "code"),
    [
        ("$pharmacy_name: lista hasta el $pickup_by $", "Lista", "invalid_placeholder"),
        ("$pharmacy_name: lista hasta el ${pickup_by", "Lista", "unbalanced_braces"),
        ("$pharmacy_name: lista hasta el {pickup_by}", "Lista", "unbalanced_braces"),
        ("$pharmacy_name: lista hasta el $pickup_by}", "Lista", "unbalanced_braces"),
        ("$pharmacy_name: lista, código $code", "Lista", "unknown_placeholder"),
        ("$pharmacy_name: su $drug_name está lista", "Lista", "drug_name_not_allowed"),
        ("$pharmacy_name: lista", "Su $drug_name está lista", "drug_name_not_allowed"),
        ("$pharmacy_name: $first_name, su receta está lista", "Lista", "not_minimum_necessary"),
        ("$pharmacy_name: lista", "$first_name, su receta", "not_minimum_necessary"),
        ("$pharmacy_name: ¡lista! " + "á" * 200, "Lista", "too_many_segments"),
        ("$pharmacy_name: lista", "x" * 151, "too_long"),
    ],
)
def test_what_is_refused_and_why(sms: str, subject: str, code: str) -> None:
    with pytest.raises(Refused) as refused:
        check(ready(sms, subject), allow_drug_names=False)
    assert refused.value.code == code
    assert str(refused.value)


def test_missing_and_misplaced_parts() -> None:
    for parts, code in (
        (("  ",), "empty"),
        (("$pharmacy_name: lista", "", "Hola"), "empty"),
    ):
        with pytest.raises(Refused) as refused:
            check(build(READY, "es", *parts), allow_drug_names=False)
        assert refused.value.code == code
    with pytest.raises(Refused) as refused:
        build(K.HELP, "en", "$pharmacy_name: help", "A subject")
    assert refused.value.code == "sms_only"


def test_drug_names_where_the_pharmacy_allows_them_and_always_in_the_email_text() -> None:
    template = ready("$pharmacy_name: su $drug_name está lista", "Su $drug_name", "$drug_name")
    check(template, allow_drug_names=True)
    check(ready("$pharmacy_name: lista", "Lista", "Su $drug_name, $first_name"), False)


def test_the_segment_bound_counts_the_sample_values() -> None:
    # GSM-7: 3 segments of 153 septets fit; the sample pharmacy name is 32 characters
    filler = "x" * (153 * SMS_MAX_SEGMENTS - len(SAMPLES["en"]["pharmacy_name"]) - 1)
    check(build(READY, "en", f"$pharmacy_name {filler}", "S", "T"), False)
    with pytest.raises(Refused, match="4 segments"):
        check(build(READY, "en", f"$pharmacy_name {filler}x", "S", "T"), False)


def test_a_preview_fills_in_synthetic_values_with_the_sms_length() -> None:
    shown = preview(ready("$pharmacy_name: lista hasta el $pickup_by."), False)
    assert shown.sms == "Farmacia Comunitaria Calle Mayor: lista hasta el 30 de septiembre."
    assert (shown.length.encoding, shown.length.segments) == ("GSM-7", 1)
    assert shown.email is not None
    assert shown.email.text == "Hello Alejandra."
    accented = preview(ready("$pharmacy_name: está lista."), False)
    assert accented.length.encoding == "UCS-2"
    assert preview(DEFAULT_TEMPLATES[(K.HELP, "en")], False).email is None


def test_a_stored_template_that_no_longer_passes_is_passed_over_for_the_default() -> None:
    named = ready("$pharmacy_name: su $drug_name está lista")
    assert effective(READY, "es", named, allow_drug_names=True) == (named, None)
    assert effective(READY, "es", named, allow_drug_names=False) == (
        DEFAULT_TEMPLATES[(READY, "es")],
        "drug_name_not_allowed",
    )
    assert effective(READY, "es", None, False) == (DEFAULT_TEMPLATES[(READY, "es")], None)
