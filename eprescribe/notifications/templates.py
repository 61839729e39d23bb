"""Notification templates: per event kind and language, an SMS body and an email subject and
body, filled in with :class:`string.Template` (``$name`` placeholders, ``safe_substitute``:
no expressions, no attribute access, nothing a template's author could make run).

**Minimum necessary** (HIPAA): a status message need not name the drug, so by default the
``$drug_name`` placeholder is refused in an SMS body and an email subject, which show on a lock
screen or in an inbox list; a pharmacy may allow drug names there (its setting, passed as
``allow_drug_names``). A template is checked when it is saved (:func:`validate_template`) and
again whenever it is rendered, so one saved before the pharmacy turned the setting off is
refused rather than sent. Words typed into the template itself are not checked: a pharmacy
that writes a drug's name as text is responsible for it.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .segments import SmsLength, sms_length


class TemplateError(ValueError):
    """A template, or the values given to it, cannot make a message."""


class EventKind(StrEnum):
    """What a notification tells the patient."""

    PRESCRIPTION_RECEIVED = "prescription_received"
    NEEDS_PRESCRIBER = "needs_prescriber"
    READY_FOR_PICKUP = "ready_for_pickup"
    NOT_COLLECTED = "not_collected_reminder"
    SHIPPED = "shipped"
    REFILL_DUE = "refill_due"
    CONSULT_SCHEDULED = "consult_scheduled"
    CANCELLED_BY_PRESCRIBER = "cancelled_by_prescriber"
    SIGN_IN_CODE = "sign_in_code"
    #: an instalment of the patient's payment plan the bank refused (one notice an attempt)
    PAYMENT_FAILED = "payment_failed"
    #: the answers to a patient's SMS keywords (carriers require them: confirm STOP and START,
    #: answer HELP); SMS only
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    HELP = "help"


class Part(StrEnum):
    """Where a template's text goes."""

    SMS = "sms"
    EMAIL_SUBJECT = "email_subject"
    EMAIL_TEXT = "email_text"
    EMAIL_HTML = "email_html"


DRUG_NAME = "drug_name"
#: parts that show before the patient opens anything: no drug name unless the pharmacy allows
GLANCEABLE = frozenset({Part.SMS, Part.EMAIL_SUBJECT})
#: what every kind may use
COMMON = frozenset({"pharmacy_name", "pharmacy_phone", "first_name", "manage_url"})
_RX = frozenset({DRUG_NAME})
#: the placeholders each kind may use, beside :data:`COMMON`
VARIABLES: Mapping[EventKind, frozenset[str]] = {
    EventKind.PRESCRIPTION_RECEIVED: _RX,
    EventKind.NEEDS_PRESCRIBER: _RX,
    EventKind.READY_FOR_PICKUP: _RX | {"pickup_by"},
    EventKind.NOT_COLLECTED: _RX | {"pickup_by"},
    EventKind.SHIPPED: _RX | {"carrier", "tracking_number", "tracking_url"},
    EventKind.REFILL_DUE: _RX | {"refill_date"},
    EventKind.CONSULT_SCHEDULED: frozenset({"consult_time", "invite_url"}),
    EventKind.CANCELLED_BY_PRESCRIBER: _RX,
    EventKind.SIGN_IN_CODE: frozenset({"code", "minutes"}),
    # what was asked (an amount and its currency: no card digits, no drug) and the patient's
    # page, where the card is changed
    EventKind.PAYMENT_FAILED: frozenset({"amount", "pay_url"}),
    EventKind.OPTED_OUT: frozenset(),
    EventKind.OPTED_IN: frozenset(),
    EventKind.HELP: frozenset(),
}
#: kinds sent by SMS only (keyword answers)
SMS_ONLY = frozenset({EventKind.OPTED_OUT, EventKind.OPTED_IN, EventKind.HELP})
#: kinds sent at once, whatever the hour: the patient asked for them a moment ago
IMMEDIATE = frozenset({EventKind.SIGN_IN_CODE, *SMS_ONLY})


def validate_template(
    kind: EventKind | str, channel: Part | str, text: str, allow_drug_names: bool = False
) -> frozenset[str]:
    """Check ``text`` as the ``channel`` part of a ``kind`` template; its placeholders.

    Refused (:class:`TemplateError`, one line saying why): a ``$`` that is not a placeholder
    (write ``$$`` for a dollar sign), a placeholder the kind does not provide, ``$drug_name``
    in an SMS body or email subject unless ``allow_drug_names``."""
    kind, part = EventKind(kind), Part(channel)
    template = string.Template(text)
    if not template.is_valid():
        raise TemplateError(f"{kind} {part}: a '$' that is not a placeholder (write $$ for $)")
    names = frozenset(template.get_identifiers())
    unknown = sorted(names - COMMON - VARIABLES[kind])
    if unknown:
        raise TemplateError(f"{kind} {part}: unknown placeholder ${unknown[0]}")
    if DRUG_NAME in names and part in GLANCEABLE and not allow_drug_names:
        raise TemplateError(
            f"{kind} {part}: $drug_name is not allowed here (minimum necessary): "
            "the pharmacy's setting does not allow drug names in SMS and email subjects"
        )
    return names


@dataclass(frozen=True, slots=True)
class NotificationTemplate:
    """One kind's texts in one language (``email_*`` empty for an SMS-only kind)."""

    kind: EventKind
    language: str
    sms: str
    email_subject: str = ""
    email_text: str = ""
    email_html: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z]{2,3}", self.language):
            raise TemplateError(f"language must be an ISO 639 code, got {self.language!r}")
        if not self.sms.strip():
            raise TemplateError(f"{self.kind} {self.language}: the SMS body is empty")
        email = (self.email_subject.strip(), self.email_text.strip())
        if self.kind not in SMS_ONLY and not all(email):
            raise TemplateError(f"{self.kind} {self.language}: an email needs a subject and body")

    def parts(self) -> dict[Part, str]:
        found = {
            Part.SMS: self.sms,
            Part.EMAIL_SUBJECT: self.email_subject,
            Part.EMAIL_TEXT: self.email_text,
        }
        if self.email_html is not None:
            found[Part.EMAIL_HTML] = self.email_html
        return {part: text for part, text in found.items() if text}

    def validate(self, allow_drug_names: bool = False) -> None:
        """Each part checked with :func:`validate_template` (when a pharmacy saves it)."""
        for part, text in self.parts().items():
            validate_template(self.kind, part, text, allow_drug_names)


@dataclass(frozen=True, slots=True)
class RenderedSms:
    body: str
    length: SmsLength


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None = None


def render_sms(
    template: NotificationTemplate, context: Mapping[str, str], allow_drug_names: bool = False
) -> RenderedSms:
    """The SMS body, with its encoding and segment count."""
    body = _fill(template, Part.SMS, template.sms, context, allow_drug_names)
    return RenderedSms(body, sms_length(body))


def render_email(
    template: NotificationTemplate, context: Mapping[str, str], allow_drug_names: bool = False
) -> RenderedEmail:
    """The email's subject (on one line), plain text and HTML alternative (values escaped)."""
    if template.kind in SMS_ONLY:
        raise TemplateError(f"{template.kind} is sent by SMS only")
    subject = _fill(template, Part.EMAIL_SUBJECT, template.email_subject, context, allow_drug_names)
    text = _fill(template, Part.EMAIL_TEXT, template.email_text, context, allow_drug_names)
    markup = None
    if template.email_html is not None:
        escaped = {name: html.escape(value) for name, value in context.items()}
        markup = _fill(template, Part.EMAIL_HTML, template.email_html, escaped, allow_drug_names)
    # a value with a line break must not start another header line
    return RenderedEmail(" ".join(subject.split()), text, markup)


def _fill(
    template: NotificationTemplate,
    part: Part,
    text: str,
    context: Mapping[str, str],
    allow_drug_names: bool,
) -> str:
    names = validate_template(template.kind, part, text, allow_drug_names)
    missing = sorted(names - context.keys())
    if missing:
        raise TemplateError(f"{template.kind} {part}: no value for ${missing[0]}")
    return string.Template(text).safe_substitute(context)
