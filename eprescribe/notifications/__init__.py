"""Patient notifications as pure domain code: when one may go (quiet hours in the patient's
time zone), what it says (templates per event kind and language, the minimum-necessary rule on
drug names), and how long an SMS is (GSM-7 or UCS-2 segments). The channels that send them are
the hub's (``server.notifications``)."""

from .defaults import DEFAULT_TEMPLATES, LANGUAGES, default_template
from .quiet_hours import DEFAULT_QUIET_HOURS, QuietHours, send_at
from .segments import SmsLength, sms_length
from .templates import (
    IMMEDIATE,
    SMS_ONLY,
    EventKind,
    NotificationTemplate,
    Part,
    RenderedEmail,
    RenderedSms,
    TemplateError,
    render_email,
    render_sms,
    validate_template,
)

__all__ = [
    "DEFAULT_QUIET_HOURS",
    "DEFAULT_TEMPLATES",
    "IMMEDIATE",
    "LANGUAGES",
    "SMS_ONLY",
    "EventKind",
    "NotificationTemplate",
    "Part",
    "QuietHours",
    "RenderedEmail",
    "RenderedSms",
    "SmsLength",
    "TemplateError",
    "default_template",
    "render_email",
    "render_sms",
    "send_at",
    "sms_length",
    "validate_template",
]
