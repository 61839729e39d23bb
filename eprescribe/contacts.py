"""How a patient is reached: their contact points (an email address, a mobile number), each
verified before use, their preferences (language, time zone, quiet hours, preferred channel)
and their consent per event kind and channel, as pure rules: normalising what was typed,
checking a verification code, and choosing where a notification goes (:func:`choose`).

The tables and the store are the hub's (``server.patients``); nothing here knows the web or a
database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eprescribe.notifications import IMMEDIATE, SMS_ONLY, EventKind, QuietHours

#: an email address's longest form (RFC 5321: 64 + 1 + 255); an E.164 number fits too
ADDRESS_MAX: Final = 320
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: a verification code: six digits, good for ten minutes and five tries
CODE_DIGITS: Final = 6
CODE_TTL: Final = dt.timedelta(minutes=10)
MAX_ATTEMPTS: Final = 5
#: a new code for one contact point at most this often: five tries a minute at most, so a
#: million codes cannot be run through by asking for new ones
RESEND_AFTER: Final = dt.timedelta(minutes=1)
#: the country code a national number is read in (a ten-digit US number)
DEFAULT_COUNTRY: Final = "1"

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
#: a host name of two labels or more (an address at a bare host is not a patient's)
_DOMAIN = re.compile(
    r"(?=.{1,255}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
)
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")


class ContactError(ValueError):
    """What was given is not a contact point or a preference the hub can use (one line why)."""


class ContactKind(StrEnum):
    EMAIL = "email"
    MOBILE = "mobile"


class Channel(StrEnum):
    """A notification's channel (as ``server.notifications.store.Channel``)."""

    EMAIL = "email"
    SMS = "sms"


class Preferred(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    NONE = "none"


#: the channel each kind of contact point is written to through
CHANNEL: Mapping[ContactKind, Channel] = {
    ContactKind.EMAIL: Channel.EMAIL,
    ContactKind.MOBILE: Channel.SMS,
}
#: the kinds a patient switches on or off: not the sign-in code (asked for a moment ago) nor
#: the answers to SMS keywords (the carriers require them)
CONSENT_KINDS: Final = tuple(k for k in EventKind if k not in IMMEDIATE and k not in SMS_ONLY)


def normalise_email(value: str) -> str:
    """``value`` trimmed, its domain lower-cased (the local part is the mailbox's own, kept as
    typed: RFC 5321 lets a server tell ``Pat`` from ``pat``)."""
    value = value.strip()
    if len(value) > ADDRESS_MAX or not _EMAIL.fullmatch(value):
        raise ContactError("not an email address (name@domain)")
    local, domain = value.rsplit("@", 1)
    domain = domain.lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise ContactError("the email address's domain is not a host name")
    return f"{local}@{domain}"


def normalise_mobile(value: str, country: str = DEFAULT_COUNTRY) -> str:
    """``value`` in E.164 form (``+`` and up to 15 digits): spaces, dashes, dots and brackets
    dropped; ``00`` read as ``+``; a national number (no ``+``) read in ``country`` (a
    ten-digit US number, or eleven starting with 1)."""
    digits = _PHONE_PUNCTUATION.sub("", value.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        if country == "1" and len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if country == "1" and len(digits) != 10:
            raise ContactError("a US number has ten digits (or give + and the country code)")
        digits = f"+{country}{digits}"
    if not is_e164(digits):
        raise ContactError("not a mobile number (E.164: + country code and number)")
    return digits


def is_e164(value: str) -> bool:
    return E164.fullmatch(value) is not None


def normalise(kind: ContactKind | str, value: str) -> str:
    kind = ContactKind(kind)
    return normalise_email(value) if kind is ContactKind.EMAIL else normalise_mobile(value)


def parse_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``America/New_York``)."""
    try:
        if name != name.strip() or not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ContactError(f"unknown time zone {name!r}: use an IANA name such as "
                           "America/New_York") from None  # fmt: skip


def parse_quiet_hours(start: str, end: str) -> QuietHours:
    """Quiet hours from two wall-clock times ``HH:MM`` (``21:00`` to ``08:00``)."""
    times = [_wall_clock(start, "start"), _wall_clock(end, "end")]
    try:
        return QuietHours(*times)
    except ValueError as exc:
        raise ContactError(str(exc)) from None


def _wall_clock(value: str, which: str) -> dt.time:
    if not re.fullmatch(r"[0-2][0-9]:[0-5][0-9]", value):
        raise ContactError(f"quiet hours {which} must be HH:MM (24-hour clock)")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise ContactError(f"quiet hours {which} must be HH:MM (24-hour clock)") from None


# -- verification -----------------------------------------------------------------------------


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def resend_at(code_expires_at: dt.datetime | None) -> dt.datetime | None:
    """When a new code may be made for a contact point whose last one expires (or expired)
    at ``code_expires_at``; ``None``: at once (no code was ever made)."""
    return None if code_expires_at is None else code_expires_at - CODE_TTL + RESEND_AFTER


def code_hash(code: str, contact_id: object) -> str:
    """What is stored of a code: SHA-256 over the contact point's ID and the code (a code
    is tied to its contact point; with five tries in ten minutes, the hash only has to keep
    the code off a database dump's first page, not resist a search of its million values)."""
    return hashlib.sha256(f"{contact_id}:{code}".encode()).hexdigest()


def code_matches(stored: str | None, code: str, contact_id: object) -> bool:
    """Whether ``code`` is the one ``stored`` was made from (compared in constant time)."""
    given = code_hash(code.strip(), contact_id)
    return stored is not None and hmac.compare_digest(stored.encode(), given.encode())


# -- where a notification goes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactPoint:
    """A contact point as :func:`choose` sees it (the address: patient data, never logged)."""

    kind: ContactKind
    address: str
    verified: bool
    opted_out: bool

    def __repr__(self) -> str:
        return f"ContactPoint(kind={self.kind!r}, verified={self.verified})"


class Unreachable(StrEnum):
    """Why a notification goes nowhere."""

    #: the patient chose no channel (or none was chosen yet: nobody is written to unasked)
    NO_CHANNEL = "no_channel"
    #: the patient switched this kind off on the preferred channel
    NO_CONSENT = "no_consent"
    #: no contact point on the preferred channel
    NO_CONTACT = "no_contact"
    #: the channel's contact points are not verified yet
    UNVERIFIED = "unverified"
    #: each verified one opted out (STOP, an unsubscribe link)
    OPTED_OUT = "opted_out"


def consented(consent: Mapping[str, Mapping[str, bool]], kind: EventKind, channel: Channel) -> bool:
    """Whether the patient allows ``kind`` on ``channel``: yes unless switched off; a kind
    the patient does not switch (a code asked for) always."""
    if kind not in CONSENT_KINDS:
        return True
    return consent.get(kind.value, {}).get(channel.value, True)


def choose(
    contacts: Sequence[ContactPoint],
    preferred: Preferred | str | None,
    consent: Mapping[str, Mapping[str, bool]],
    kind: EventKind | str,
) -> ContactPoint | Unreachable:
    """Where a ``kind`` notification goes: the first of ``contacts`` (the caller's order:
    oldest first) on the ``preferred`` channel that is verified and not opted out, when the
    patient consents to ``kind`` there; else why not. The other channel is never a fallback:
    a patient who prefers SMS and stopped it has said how they want to be reached."""
    kind = EventKind(kind)
    if preferred is None or Preferred(preferred) is Preferred.NONE:
        return Unreachable.NO_CHANNEL
    channel = Channel(Preferred(preferred).value)
    if not consented(consent, kind, channel):
        return Unreachable.NO_CONSENT
    on_channel = [c for c in contacts if CHANNEL[c.kind] is channel]
    verified = [c for c in on_channel if c.verified]
    usable = [c for c in verified if not c.opted_out]
    if usable:
        return usable[0]
    if verified:
        return Unreachable.OPTED_OUT
    return Unreachable.UNVERIFIED if on_channel else Unreachable.NO_CONTACT
