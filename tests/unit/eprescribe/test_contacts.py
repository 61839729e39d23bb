"""The pure rules of contact points: normalising, codes, and where a notification goes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from eprescribe.contacts import (
    CONSENT_KINDS,
    ContactError,
    ContactKind,
    ContactPoint,
    Unreachable,
    choose,
    code_hash,
    code_matches,
    new_code,
    normalise,
    parse_quiet_hours,
    parse_zone,
    resend_at,
)
from eprescribe.notifications import EventKind

EMAIL = ContactPoint(ContactKind.EMAIL, "pat@example.net", verified=True, opted_out=False)
MOBILE = ContactPoint(ContactKind.MOBILE, "+15555550123", verified=True, opted_out=False)
READY = EventKind.READY_FOR_PICKUP


@pytest.mark.parametrize(
    ("kind", "typed", "stored"),
    [
        ("email", " Pat.Synthetic@Example.NET ", "Pat.Synthetic@example.net"),
        ("email", "pat@example.net.", "pat@example.net"),
        ("mobile", "(555) 555-0123", "+15555550123"),
        ("mobile", "1-555-555-0123", "+15555550123"),
        ("mobile", "+44 20 7946 0958", "+442079460958"),
        ("mobile", "0044 20 7946 0958", "+442079460958"),
    ],
)
def test_what_is_typed_is_stored_normalised(kind: str, typed: str, stored: str) -> None:
    assert normalise(kind, typed) == stored


@pytest.mark.parametrize(
    ("kind", "typed"),
    [
        ("email", "pat"),
        ("email", "pat@@example.net"),
        ("email", "pat@localhost"),
        ("email", "pat @example.net"),
        ("email", "pat@exa_mple.net"),
        ("mobile", "555-0123"),
        ("mobile", "+0123456789"),
        ("mobile", "+1234567890123456"),
        ("mobile", "call me"),
    ],
)
def test_what_is_not_a_contact_point_is_refused(kind: str, typed: str) -> None:
    with pytest.raises(ContactError):
        normalise(kind, typed)


def test_zones_and_quiet_hours_are_checked() -> None:
    assert parse_zone("America/Chicago").key == "America/Chicago"
    for bad in ("Mars/Base", "", " UTC", "/etc/localtime", "../zoneinfo/UTC"):
        with pytest.raises(ContactError, match="unknown time zone"):
            parse_zone(bad)
    quiet = parse_quiet_hours("21:30", "07:00")
    assert (quiet.start, quiet.end) == (dt.time(21, 30), dt.time(7))
    for start, end in (("24:00", "07:00"), ("7:00", "21:00"), ("07:00", "07:00")):
        with pytest.raises(ContactError):
            parse_quiet_hours(start, end)


def test_a_code_is_six_digits_and_tied_to_its_contact_point() -> None:
    contact, other = uuid.uuid4(), uuid.uuid4()
    code = new_code()
    assert len(code) == 6
    assert code.isdigit()
    stored = code_hash(code, contact)
    assert code not in stored
    assert code_matches(stored, f" {code} ", contact)
    assert not code_matches(stored, code, other)
    assert not code_matches(None, code, contact)


def test_a_notification_goes_to_the_first_usable_contact_on_the_preferred_channel() -> None:
    stale = ContactPoint(ContactKind.EMAIL, "old@example.net", verified=False, opted_out=False)
    assert choose([stale, EMAIL, MOBILE], "email", {}, READY) is EMAIL
    assert choose([stale, EMAIL, MOBILE], "sms", {}, READY) is MOBILE


def test_why_a_notification_goes_nowhere() -> None:
    stopped = ContactPoint(ContactKind.MOBILE, "+15555550123", verified=True, opted_out=True)
    unverified = ContactPoint(ContactKind.MOBILE, "+15555550123", verified=False, opted_out=False)
    assert choose([EMAIL], None, {}, READY) is Unreachable.NO_CHANNEL
    assert choose([EMAIL], "none", {}, READY) is Unreachable.NO_CHANNEL
    assert choose([EMAIL], "sms", {}, READY) is Unreachable.NO_CONTACT  # no fallback to email
    assert choose([unverified], "sms", {}, READY) is Unreachable.UNVERIFIED
    assert choose([stopped, EMAIL], "sms", {}, READY) is Unreachable.OPTED_OUT
    switched_off = {READY.value: {"sms": False}}
    assert choose([MOBILE], "sms", switched_off, READY) is Unreachable.NO_CONSENT
    assert choose([MOBILE], "sms", switched_off, EventKind.REFILL_DUE) is MOBILE
    # a code the patient asked for is not switched off with the notices
    everything_off = {k.value: {"sms": False} for k in EventKind}
    assert choose([MOBILE], "sms", everything_off, EventKind.SIGN_IN_CODE) is MOBILE
    assert EventKind.SIGN_IN_CODE not in CONSENT_KINDS
    assert EventKind.OPTED_OUT not in CONSENT_KINDS


def test_an_address_stays_out_of_reprs() -> None:
    assert "example" not in repr(EMAIL)


def test_a_new_code_waits_a_minute_after_the_last() -> None:
    sent = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    assert resend_at(None) is None
    assert resend_at(sent + dt.timedelta(minutes=10)) == sent + dt.timedelta(minutes=1)
