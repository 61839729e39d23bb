"""Templates: validation when saved (the minimum-necessary rule on drug names), rendering in
both languages, and the defaults."""

from __future__ import annotations

import pytest

from eprescribe.notifications import (
    DEFAULT_TEMPLATES,
    IMMEDIATE,
    LANGUAGES,
    SMS_ONLY,
    EventKind,
    NotificationTemplate,
    Part,
    TemplateError,
    default_template,
    render_email,
    render_sms,
    validate_template,
)
from eprescribe.notifications.templates import COMMON, VARIABLES

CONTEXT = {
    "pharmacy_name": "Main St Pharmacy",
    "pharmacy_phone": "(555) 010-0100",
    "first_name": "Pat",
    "manage_url": "https://hub.example.org/preferences/opaque",
    "drug_name": "Synthetic 10 mg tablet",
    "pickup_by": "June 14",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
    "tracking_url": "https://track.example.com/1Z999AA10123456784",
    "refill_date": "July 1",
    "consult_time": "June 3 at 2:30 pm",
    "invite_url": "https://hub.example.org/consult/Abc123",
    "code": "482913",
    "minutes": "10",
    "amount": "26.67 USD",
    "pay_url": "https://hub.example.org/me/1234567",
}


@pytest.mark.parametrize("part", [Part.SMS, Part.EMAIL_SUBJECT])
def test_drug_names_are_refused_at_a_glance_unless_the_pharmacy_allows_them(part: Part) -> None:
    text = "$pharmacy_name: your $drug_name is ready"
    with pytest.raises(
        TemplateError, match=r"\$drug_name is not allowed here \(minimum necessary\)"
    ):
        validate_template(EventKind.READY_FOR_PICKUP, part, text, allow_drug_names=False)
    assert "drug_name" in validate_template("ready_for_pickup", part, text, allow_drug_names=True)


def test_drug_names_may_be_in_an_email_body() -> None:
    for part in (Part.EMAIL_TEXT, Part.EMAIL_HTML):
        validate_template(EventKind.READY_FOR_PICKUP, part, "Your $drug_name is ready.")


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("sign_in_code", "Your code for $drug_name", r"unknown placeholder \$drug_name"),
        ("ready_for_pickup", "Join $invite_url", r"unknown placeholder \$invite_url"),
        ("ready_for_pickup", "Pay $5 at the counter", "not a placeholder"),
        ("ready_for_pickup", "${first_name.__class__}", "not a placeholder"),
    ],
)
def test_what_a_template_may_not_say(kind: str, text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        validate_template(kind, "sms", text)


def test_a_dollar_sign_is_written_twice() -> None:
    template = NotificationTemplate(
        EventKind.READY_FOR_PICKUP, "en", "$pharmacy_name: ready; $$5 copay.", "Ready", "Ready."
    )
    assert render_sms(template, CONTEXT).body == "Main St Pharmacy: ready; $5 copay."


def test_the_renderer_enforces_the_rule_on_a_template_saved_before_the_setting_changed() -> None:
    template = NotificationTemplate(
        EventKind.READY_FOR_PICKUP, "en", "$pharmacy_name: $drug_name is ready", "Ready", "Ready."
    )
    assert render_sms(template, CONTEXT, allow_drug_names=True).body == (
        "Main St Pharmacy: Synthetic 10 mg tablet is ready"
    )
    with pytest.raises(TemplateError, match="minimum necessary"):
        render_sms(template, CONTEXT)


def test_a_missing_value_is_refused_rather_than_sent_as_a_placeholder() -> None:
    template = default_template(EventKind.SIGN_IN_CODE)
    with pytest.raises(TemplateError, match=r"no value for \$code"):
        render_sms(template, {k: v for k, v in CONTEXT.items() if k != "code"})


def test_values_are_inserted_as_text_never_evaluated() -> None:
    template = default_template(EventKind.READY_FOR_PICKUP)
    hostile = CONTEXT | {"pickup_by": "$code ${pharmacy_name} {0.__class__}"}
    assert "$code ${pharmacy_name} {0.__class__}" in render_sms(template, hostile).body


def test_email_values_are_escaped_in_html_and_the_subject_stays_on_one_line() -> None:
    template = NotificationTemplate(
        EventKind.READY_FOR_PICKUP,
        "en",
        "$pharmacy_name: ready",
        "$pharmacy_name: ready",
        "Hello $first_name",
        "<p>Hello $first_name</p>",
    )
    context = CONTEXT | {"first_name": "<b>Pat</b>", "pharmacy_name": "Main St\r\nBcc: x"}
    rendered = render_email(template, context)
    assert rendered.html == "<p>Hello &lt;b&gt;Pat&lt;/b&gt;</p>"
    assert rendered.text == "Hello <b>Pat</b>"
    assert rendered.subject == "Main St Bcc: x: ready"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(EventKind))
def test_every_default_renders_without_naming_the_drug(kind: EventKind, language: str) -> None:
    template = DEFAULT_TEMPLATES[(kind, language)]
    template.validate(allow_drug_names=False)
    context = {name: CONTEXT[name] for name in COMMON | VARIABLES[kind]}
    sms = render_sms(template, context)
    assert "$" not in sms.body
    assert sms.body.startswith(CONTEXT["pharmacy_name"]) or kind is EventKind.SIGN_IN_CODE
    assert sms.length.segments <= 3
    if kind in SMS_ONLY:
        with pytest.raises(TemplateError, match="SMS only"):
            render_email(template, context)
        return
    email = render_email(template, context)
    for text in (sms.body, email.subject, email.text):
        assert CONTEXT["drug_name"] not in text
    assert "$" not in email.subject + email.text


def test_english_and_spanish_and_what_each_costs() -> None:
    context = {name: CONTEXT[name] for name in COMMON | VARIABLES[EventKind.READY_FOR_PICKUP]}
    english = render_sms(default_template("ready_for_pickup", "en"), context)
    spanish = render_sms(default_template("ready_for_pickup", "es"), context)
    assert english.body == (
        "Main St Pharmacy: your prescription is ready for pick-up until June 14. "
        "Reply STOP to opt out."
    )
    assert (english.length.encoding, english.length.segments) == ("GSM-7", 1)
    assert spanish.body == (
        "Main St Pharmacy: su receta está lista. Puede recogerla hasta el June 14. "
        "Responda STOP para no recibir mensajes."
    )
    # "á" is not in the GSM-7 alphabet: the whole text goes in UCS-2, 67 units a part
    assert (spanish.length.encoding, spanish.length.units, spanish.length.segments) == (
        "UCS-2",
        len(spanish.body),
        2,
    )
    code = render_sms(
        default_template("sign_in_code", "es"), context | {"code": "482913", "minutes": "10"}
    )
    assert code.body.startswith("482913 es su código")
    email = render_email(default_template("shipped", "es"), CONTEXT)
    assert email.subject == "Enviamos su pedido"
    assert "número de seguimiento 1Z999AA10123456784" in email.text


def test_an_unknown_language_falls_back_to_english() -> None:
    assert default_template("refill_due", "fr") is DEFAULT_TEMPLATES[(EventKind.REFILL_DUE, "en")]


def test_a_sign_in_code_goes_at_any_hour_and_status_updates_wait() -> None:
    assert EventKind.SIGN_IN_CODE in IMMEDIATE
    assert EventKind.READY_FOR_PICKUP not in IMMEDIATE


def test_templates_must_be_complete() -> None:
    with pytest.raises(TemplateError, match="subject and body"):
        NotificationTemplate(EventKind.SHIPPED, "en", "$pharmacy_name: shipped")
    with pytest.raises(TemplateError, match="ISO 639"):
        NotificationTemplate(EventKind.HELP, "English", "help")
    NotificationTemplate(EventKind.HELP, "en", "$pharmacy_name: call us")  # SMS only: enough


@pytest.mark.parametrize("name", ["drug_name", "last4", "card_number", "brand"])
def test_a_failed_payments_notice_names_neither_drug_nor_card(name: str) -> None:
    """What was asked and where to change the card, nothing more: a drug or the card's
    digits are not placeholders of ``payment_failed``, in any part."""
    assert validate_template("payment_failed", Part.SMS, "$pharmacy_name: $amount $pay_url")
    for part in Part:
        with pytest.raises(TemplateError, match=f"unknown placeholder \\${name}"):
            validate_template("payment_failed", part, f"$amount ${name}", allow_drug_names=True)
