"""A pharmacy's own templates: what is refused when one is saved, what is sent when one no
longer passes, and the preview its admin sees first (with synthetic values only).

A pharmacy admin may replace a kind's default (:mod:`.defaults`) in a language. The
replacement is refused (:class:`Refused`, with a code and one line saying why) when:

- a ``$`` is not a placeholder (``invalid_placeholder``; ``$$`` writes a dollar sign), or a
  brace stands outside a ``${name}`` placeholder (``unbalanced_braces``: ``{first_name}`` or
  ``${first_name`` would be sent as typed);
- it uses a placeholder the kind does not provide (``unknown_placeholder``: the fixed set of
  :data:`.templates.VARIABLES` and :data:`.templates.COMMON`);
- ``$drug_name`` is in the SMS body or the email subject and the pharmacy does not allow drug
  names there (``drug_name_not_allowed``);
- the SMS body or the email subject carries more than the minimum necessary
  (``not_minimum_necessary``): the patient's name (``$first_name``) shows on a lock screen or
  in an inbox list beside the pharmacy's name; it belongs in the email's greeting;
- the SMS, filled in with the sample values, costs more than :data:`SMS_MAX_SEGMENTS`
  segments (``too_many_segments``), or a part is longer than its bound (``too_long``);
- a part is missing (``empty``: every kind has an SMS body, every kind but the SMS-only
  keyword answers an email subject and text) or given to an SMS-only kind (``sms_only``).

The same checks run again whenever a stored template is used (:func:`effective`): one saved
while drug names were allowed is not used once they are not; the default goes instead.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from .defaults import default_template
from .segments import SmsLength
from .templates import (
    COMMON,
    DRUG_NAME,
    GLANCEABLE,
    SMS_ONLY,
    VARIABLES,
    EventKind,
    NotificationTemplate,
    Part,
    RenderedEmail,
    TemplateError,
    render_email,
    render_sms,
    validate_template,
)

#: the most segments a pharmacy's SMS may cost, filled in with the sample values
SMS_MAX_SEGMENTS = 3
#: the longest each part may be, in characters
MAX_LENGTH: Mapping[Part, int] = {
    Part.SMS: 640,
    Part.EMAIL_SUBJECT: 150,
    Part.EMAIL_TEXT: 5000,
    Part.EMAIL_HTML: 20000,
}
#: placeholders that name the patient: never where a message shows before it is opened
IDENTIFYING = frozenset({"first_name"})
_NAMES = {
    Part.SMS: "SMS text",
    Part.EMAIL_SUBJECT: "email subject",
    Part.EMAIL_TEXT: "email text",
    Part.EMAIL_HTML: "email HTML",
}
_BRACES = re.compile(r"\$\$|\$\{[_a-z][_a-z0-9]*\}", re.IGNORECASE)

#: synthetic values a preview and the length check fill in (never a patient's); a little
#: longer than most real ones, so a template that passes fits real messages too
SAMPLES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "pharmacy_name": "Main Street Community Pharmacy",
        "pharmacy_phone": "(555) 010-0100",
        "first_name": "Alexandra",
        "manage_url": "https://hub.example.org/unsubscribe/sample-preferences-link",
        DRUG_NAME: "Sampleprofen 200 mg oral tablet",
        "pickup_by": "September 30",
        "carrier": "Sample Parcel Service",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://track.example.com/1Z999AA10123456784",
        "refill_date": "September 30",
        "consult_time": "September 30, 12:45 PM",
        "invite_url": "https://hub.example.org/consult/sample-invite-link",
        "code": "482913",
        "minutes": "10",
        "amount": "1234.56 USD",
        "pay_url": "https://hub.example.org/me/0000000",
    },
    "es": {
        "pharmacy_name": "Farmacia Comunitaria Calle Mayor",
        "pharmacy_phone": "(555) 010-0100",
        "first_name": "Alejandra",
        "manage_url": "https://hub.example.org/unsubscribe/sample-preferences-link",
        DRUG_NAME: "Sampleprofeno 200 mg tableta oral",
        "pickup_by": "30 de septiembre",
        "carrier": "Servicio de Paquetería Ejemplo",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://track.example.com/1Z999AA10123456784",
        "refill_date": "30 de septiembre",
        "consult_time": "30 de septiembre, 12:45",
        "invite_url": "https://hub.example.org/consult/sample-invite-link",
        "code": "482913",
        "minutes": "10",
        "amount": "1234.56 USD",
        "pay_url": "https://hub.example.org/me/0000000",
    },
}


class Refused(TemplateError):
    """A pharmacy's template the rules refuse: ``code`` says which rule, the message why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def placeholders(kind: EventKind | str) -> frozenset[str]:
    """The placeholders a ``kind`` template may use."""
    return COMMON | VARIABLES[EventKind(kind)]


def samples(language: str) -> Mapping[str, str]:
    """The synthetic values of ``language`` (English for one without its own)."""
    return SAMPLES.get(language, SAMPLES["en"])


def check_part(
    kind: EventKind | str, part: Part | str, text: str, allow_drug_names: bool
) -> frozenset[str]:
    """Check ``text`` as the ``part`` of a pharmacy's ``kind`` template; its placeholders.
    :class:`Refused` with the first rule it breaks."""
    kind, part = EventKind(kind), Part(part)
    where = _NAMES[part]
    if len(text) > MAX_LENGTH[part]:
        raise Refused("too_long", f"The {where} is longer than {MAX_LENGTH[part]} characters.")
    template = string.Template(text)
    if not template.is_valid():
        if re.search(r"\$\{[^}]*$|\$\{[^}]*\s", text):
            raise Refused("unbalanced_braces", f"The {where} has a '${{' without its '}}'.")
        raise Refused(
            "invalid_placeholder",
            f"The {where} has a '$' that is not a placeholder (write $$ for a dollar sign).",
        )
    if "{" in _BRACES.sub("", text) or "}" in _BRACES.sub("", text):
        raise Refused(
            "unbalanced_braces",
            f"The {where} has a brace outside a placeholder (write $name or ${{name}}).",
        )
    names = frozenset(template.get_identifiers())
    unknown = sorted(names - placeholders(kind))
    if unknown:
        allowed = ", ".join(f"${name}" for name in sorted(placeholders(kind)))
        raise Refused(
            "unknown_placeholder",
            f"The {where} uses ${unknown[0]}, which this notification does not have "
            f"(it has {allowed}).",
        )
    if part in GLANCEABLE:
        if DRUG_NAME in names and not allow_drug_names:
            raise Refused(
                "drug_name_not_allowed",
                f"The {where} names the drug ($drug_name): the pharmacy does not allow drug "
                "names in texts and email subjects (minimum necessary).",
            )
        named = sorted(names & IDENTIFYING)
        if named:
            raise Refused(
                "not_minimum_necessary",
                f"The {where} carries ${named[0]}, more than the minimum necessary where a "
                "message shows unopened (a lock screen, an inbox list): use it in the email "
                "text.",
            )
    # the hub's own rules on placeholders, as every render applies them
    validate_template(kind, part, text, allow_drug_names)
    return names


def check(template: NotificationTemplate, allow_drug_names: bool) -> None:
    """Check a pharmacy's whole ``template`` (:class:`Refused` with the first rule broken)."""
    if not template.sms.strip():
        raise Refused("empty", "The SMS text is empty.")
    if template.kind in SMS_ONLY:
        if template.email_subject or template.email_text or template.email_html:
            raise Refused("sms_only", f"{template.kind.value} is sent by SMS only: no email.")
    elif not (template.email_subject.strip() and template.email_text.strip()):
        raise Refused("empty", "An email needs a subject and a text.")
    for part, text in template.parts().items():
        check_part(template.kind, part, text, allow_drug_names)
    length = render_sms(template, samples(template.language), allow_drug_names).length
    if length.segments > SMS_MAX_SEGMENTS:
        raise Refused(
            "too_many_segments",
            f"The SMS text, filled in with the sample values, is {length.segments} segments "
            f"({length.encoding}, {length.units} units); at most {SMS_MAX_SEGMENTS}.",
        )


def build(
    kind: EventKind | str,
    language: str,
    sms: str,
    email_subject: str = "",
    email_text: str = "",
    email_html: str | None = None,
) -> NotificationTemplate:
    """A pharmacy's template from its parts (:class:`Refused` when it cannot be one)."""
    kind = EventKind(kind)
    if not sms.strip():
        raise Refused("empty", "The SMS text is empty.")
    if kind in SMS_ONLY and (email_subject or email_text or email_html):
        raise Refused("sms_only", f"{kind.value} is sent by SMS only: no email.")
    try:
        return NotificationTemplate(kind, language, sms, email_subject, email_text, email_html)
    except TemplateError as exc:
        raise Refused("empty", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Preview:
    """What a template makes with the sample values: the SMS with its length, the email
    (none for an SMS-only kind)."""

    sms: str
    length: SmsLength
    email: RenderedEmail | None


def preview(template: NotificationTemplate, allow_drug_names: bool) -> Preview:
    """Check ``template`` (:class:`Refused`) and fill it in with the sample values."""
    check(template, allow_drug_names)
    values = samples(template.language)
    sms = render_sms(template, values, allow_drug_names)
    email = None if template.kind in SMS_ONLY else render_email(template, values, allow_drug_names)
    return Preview(sms.body, sms.length, email)


def effective(
    kind: EventKind | str,
    language: str,
    custom: NotificationTemplate | None,
    allow_drug_names: bool,
) -> tuple[NotificationTemplate, str | None]:
    """The template to render now: the pharmacy's ``custom`` one if it still passes with the
    pharmacy's setting as it is, else the default (and why the custom one was passed over)."""
    if custom is not None:
        try:
            check(custom, allow_drug_names)
        except TemplateError as exc:
            return default_template(kind, language), getattr(exc, "code", "refused")
        return custom, None
    return default_template(kind, language), None
