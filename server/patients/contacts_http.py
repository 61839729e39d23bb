"""The console's side of a profile's contact points, preferences and notification consent:
``/api/v1/patients/{id}/preferences`` (GET, PUT), ``.../contacts`` (POST: starts its
verification), ``.../contacts/{contact}/verify`` (POST), ``.../contacts/{contact}`` (DELETE)
and ``.../consent`` (PUT). Own pharmacy only (another's profile is 404, audited as a miss);
every read and change audited, without an address or a code."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.contacts import (
    CONSENT_KINDS,
    MAX_ATTEMPTS,
    Channel,
    ContactError,
    consented,
    normalise,
    parse_quiet_hours,
    parse_zone,
    resend_at,
)

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import NotFound, Unprocessable
from ..http import path_uuid, read_json_as, respond
from ..notifications import NOTIFY
from ..notifications import store as outbox
from ..openapi import Operation, Timestamp, operation, path
from ..prescriptions.actions import SCOPE as VERIFY_SCOPE
from ..prescriptions.actions import TECHNICIAN
from ..prescriptions.queue import SCOPE
from . import contacts
from .models import PatientContact, PatientPreferences

MAX_BODY = 4096
#: the most contact points one profile holds
MAX_CONTACTS = 10
_PATIENT = [path("id", "the patient profile")]
_CONTACT = [*_PATIENT, path("contact", "the contact point")]


class Representative(msgspec.Struct, frozen=True, kw_only=True):
    """A caregiver or authorised representative."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    relationship: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    contact: Annotated[
        str, msgspec.Meta(min_length=1, max_length=320, description="a phone or an email")
    ]


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """What the patient prefers (a PUT replaces all of it: what is left out is the default)."""

    language: Annotated[str, msgspec.Meta(pattern="^[a-z]{2,3}$", description="ISO 639")] = "en"
    time_zone: (
        Annotated[str, msgspec.Meta(max_length=64, description="IANA name; needed for a channel")]
        | None
    ) = None
    quiet_start: Annotated[str | None, msgspec.Meta(description="HH:MM, local")] = None
    quiet_end: Annotated[str | None, msgspec.Meta(description="HH:MM, local")] = None
    preferred_channel: Literal["email", "sms", "none"] = "none"
    generic_or_brand: Literal["generic", "brand"] | None = None
    pickup_or_delivery: Literal["pickup", "delivery"] | None = None
    ninety_day_supply: bool = False
    easy_open_caps: bool = False
    large_print_labels: bool = False
    representative: Representative | None = None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: Literal["email", "mobile"]
    value: Annotated[
        str, msgspec.Meta(description="normalised: E.164, or the domain in lower case")
    ]
    verified_at: Timestamp | None
    opted_out_at: Timestamp | None
    created_at: Timestamp


class ProfilePreferences(msgspec.Struct, frozen=True, kw_only=True):
    """A profile's preferences, contact points and consent (per event kind and channel)."""

    preferences: Preferences
    contacts: list[Contact]
    consent: Annotated[
        dict[str, dict[str, bool]],
        msgspec.Meta(description="event kind -> channel (email, sms) -> allowed"),
    ]


def _view(prefs: PatientPreferences, rows: list[PatientContact]) -> ProfilePreferences:
    return ProfilePreferences(
        preferences=Preferences(
            language=prefs.language,
            time_zone=prefs.time_zone,
            quiet_start=_hhmm(prefs.quiet_start),
            quiet_end=_hhmm(prefs.quiet_end),
            preferred_channel=prefs.preferred_channel,  # type: ignore[arg-type]
            generic_or_brand=prefs.generic_or_brand,  # type: ignore[arg-type]
            pickup_or_delivery=prefs.pickup_or_delivery,  # type: ignore[arg-type]
            ninety_day_supply=prefs.ninety_day_supply,
            easy_open_caps=prefs.easy_open_caps,
            large_print_labels=prefs.large_print_labels,
            representative=msgspec.convert(prefs.representative, Representative)
            if prefs.representative
            else None,
        ),
        contacts=[_contact(r) for r in rows],
        consent={
            k.value: {c.value: consented(prefs.consent, k, c) for c in Channel}
            for k in CONSENT_KINDS
        },
    )


def _contact(row: PatientContact) -> Contact:
    return Contact(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        value=row.value,
        verified_at=_iso(row.verified_at),
        opted_out_at=_iso(row.opted_out_at),
        created_at=row.created_at.isoformat(),
    )


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _hhmm(moment: dt.time | None) -> str | None:
    return moment.strftime("%H:%M") if moment else None


async def _profile_or_refuse(
    session: AsyncSession, who: Caller, patient_id: uuid.UUID, event: audit.Event
) -> None:
    """The profile (locked) must be the caller's pharmacy's: else 404, audited as a miss."""
    found = await contacts.own_profile(session, patient_id, who.pharmacy_id)
    await audit.found(session, who.actor, event, found, NotFound("No such patient."))


@operation(
    Operation(
        operation_id="getPatientPreferences",
        summary="A patient's preferences, contact points and notification consent",
        scope=SCOPE,
        parameters=_PATIENT,
        response=ProfilePreferences,
        errors=("401", "403", "404"),
    )
)
async def get_preferences(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/preferences``."""
    who = await caller(request, SCOPE)
    patient_id = path_uuid(request, "patient")
    event = audit.Event("patient.preferences.read", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        await _profile_or_refuse(session, who, patient_id, event)
        view = _view(
            await contacts.preferences_of(session, patient_id),
            await contacts.contacts_of(session, patient_id),
        )
        await audit.add(session, who.actor, event)
    return respond(view)


@operation(
    Operation(
        operation_id="putPatientPreferences",
        summary="Set a patient's preferences (language, time zone, quiet hours, channel...)",
        scope=VERIFY_SCOPE,
        parameters=_PATIENT,
        body=Preferences,
        response=ProfilePreferences,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description="Allowed to: pharmacist, technician. 422: an unknown time zone, quiet "
        "hours not HH:MM or starting and ending together, one end of them without the "
        "other, a channel without a time zone.",
    )
)
async def put_preferences(request: web.Request) -> web.Response:
    """``PUT /api/v1/patients/{id}/preferences``."""
    who = await _changer(request)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, Preferences, MAX_BODY)
    quiet = _checked(body)
    event = audit.Event("patient.preferences.update", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        await _profile_or_refuse(session, who, patient_id, event)
        prefs = await contacts.preferences_of(session, patient_id)
        prefs.language, prefs.time_zone = body.language, body.time_zone
        prefs.quiet_start, prefs.quiet_end = quiet
        prefs.preferred_channel = body.preferred_channel
        prefs.generic_or_brand, prefs.pickup_or_delivery = (
            body.generic_or_brand,
            body.pickup_or_delivery,
        )
        prefs.ninety_day_supply = body.ninety_day_supply
        prefs.easy_open_caps = body.easy_open_caps
        prefs.large_print_labels = body.large_print_labels
        prefs.representative = msgspec.to_builtins(body.representative)
        prefs.updated_at = utcnow()
        session.add(prefs)
        await session.flush()
        view = _view(prefs, await contacts.contacts_of(session, patient_id))
        detail = {"preferred_channel": body.preferred_channel, "language": body.language}
        await audit.add(session, who.actor, replace(event, detail=detail))
    return respond(view)


def _checked(body: Preferences) -> tuple[dt.time | None, dt.time | None]:
    """The quiet hours (both or neither); 422 for what the types cannot say."""
    try:
        if body.time_zone is not None:
            parse_zone(body.time_zone)
        if (body.quiet_start is None) != (body.quiet_end is None):
            raise ContactError("give both quiet_start and quiet_end, or neither")
        quiet = None
        if body.quiet_start is not None and body.quiet_end is not None:
            quiet = parse_quiet_hours(body.quiet_start, body.quiet_end)
    except ContactError as exc:
        raise Unprocessable("preferences_invalid", _sentence(exc)) from None
    if body.preferred_channel != "none" and body.time_zone is None:
        raise Unprocessable(
            "preferences_invalid",
            "A preferred channel needs the patient's time zone (for quiet hours).",
        )
    return (quiet.start, quiet.end) if quiet else (None, None)


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


async def _changer(request: web.Request) -> Caller:
    who = await caller(request, VERIFY_SCOPE)
    who.require_role(PHARMACIST, TECHNICIAN)
    return who


class NewContact(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["email", "mobile"]
    value: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=320,
            description="an email address, or a mobile number (E.164, or a ten-digit US one)",
        ),
    ]


@operation(
    Operation(
        operation_id="addPatientContact",
        summary="Add a contact point and send it a verification code (valid 10 minutes)",
        scope=VERIFY_SCOPE,
        parameters=_PATIENT,
        body=NewContact,
        response=Contact,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description="Allowed to: pharmacist, technician. The code goes out through the "
        "notification outbox after the commit; one the profile has already is sent a new "
        "code unless verified (at most one a minute: 422 code_too_soon). An address that "
        "opted out elsewhere starts opted out, and is sent no code.",
    )
)
async def add_contact(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/contacts``."""
    who = await _changer(request)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, NewContact, MAX_BODY)
    try:
        value = normalise(body.kind, body.value)
    except ContactError as exc:
        raise Unprocessable("contact_invalid", _sentence(exc)) from None
    event = audit.Event("patient.contact.add", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        await _profile_or_refuse(session, who, patient_id, event)
        rows = await contacts.contacts_of(session, patient_id)
        row = next((r for r in rows if r.kind == body.kind and r.value == value), None)
        if row is None:
            if len(rows) >= MAX_CONTACTS:
                await audit.refuse(
                    session,
                    who.actor,
                    replace(event, outcome="refused", detail={"refused": "too_many"}),
                    Unprocessable("contacts_full", f"A profile holds {MAX_CONTACTS} contacts."),
                )
            row = await _new_contact(session, who, patient_id, body.kind, value)
        # an address that opted out is not texted or mailed a code (START lifts it first)
        sent = row.verified_at is None and row.opted_out_at is None
        if sent:
            await _not_too_soon(session, who, row, event)
            await contacts.send_code(session, row)
        written = outbox.enqueued(session)
        detail = {"contact_id": str(row.id), "kind": row.kind, "code_sent": sent}
        await audit.add(session, who.actor, replace(event, detail=detail))
    _publish(request, written)
    return respond(_contact(row))


async def _new_contact(
    session: AsyncSession, who: Caller, patient_id: uuid.UUID, kind: str, value: str
) -> PatientContact:
    now = utcnow()
    row = PatientContact(
        id=uuid.uuid4(),
        patient_id=patient_id,
        pharmacy_id=who.pharmacy_id,
        kind=kind,
        value=value,
        code_attempts=0,
        opted_out_at=await contacts.opted_out_since(session, kind, value),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def _not_too_soon(
    session: AsyncSession, who: Caller, row: PatientContact, event: audit.Event
) -> None:
    """A new code at most once a minute (:data:`~eprescribe.contacts.RESEND_AFTER`)."""
    allowed = resend_at(row.code_expires_at)
    now = utcnow()
    if allowed is not None and now < allowed:
        wait = int((allowed - now).total_seconds()) + 1
        detail = {"contact_id": str(row.id), "refused": "too_soon"}
        await audit.refuse(
            session,
            who.actor,
            replace(event, outcome="refused", detail=detail),
            Unprocessable(
                "code_too_soon",
                f"A code was sent less than a minute ago: try again in {wait} s.",
                extra={"retry_after": wait},
            ),
        )


def _publish(request: web.Request, written: list[uuid.UUID]) -> None:
    notify = request.app.get(NOTIFY)
    if written and notify is not None:
        notify(written)


class Code(msgspec.Struct, frozen=True, kw_only=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=12, description="six digits")]


@operation(
    Operation(
        operation_id="verifyPatientContact",
        summary="Verify a contact point with the code it was sent",
        scope=VERIFY_SCOPE,
        parameters=_CONTACT,
        body=Code,
        response=Contact,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description=f"Allowed to: pharmacist, technician. 422 code_wrong (tries left in "
        f"`remaining`), or code_dead: expired, or wrong {MAX_ATTEMPTS} times (ask for a new "
        "one by adding the contact point again).",
    )
)
async def verify_contact(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/contacts/{contact}/verify``."""
    who = await _changer(request)
    patient_id, contact_id = path_uuid(request, "patient"), _contact_id(request)
    body = await read_json_as(request, Code, MAX_BODY)
    event = audit.Event(
        "patient.contact.verify", "patient", str(patient_id), detail={"contact_id": str(contact_id)}
    )
    async with audit.refusable(request.app[DATABASE]) as session:
        row = await _own_contact(session, who, patient_id, contact_id, event)
        found = contacts.check_code(row, body.code, utcnow())
        if found != "verified":
            left = max(MAX_ATTEMPTS - row.code_attempts, 0) if found == "wrong" else 0
            refusal = Unprocessable(
                f"code_{found}",
                "The code is wrong."
                if found == "wrong"
                else "The code is no longer valid: send a new one.",
                extra={"remaining": left},
            )
            outcome = replace(event, outcome="refused", detail={**event.detail, "refused": found})
            await audit.refuse(session, who.actor, outcome, refusal)
        await audit.add(session, who.actor, event)
    return respond(_contact(row))


def _contact_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["contact"])
    except ValueError:
        raise NotFound("No such contact point.") from None


async def _own_contact(
    session: AsyncSession,
    who: Caller,
    patient_id: uuid.UUID,
    contact_id: uuid.UUID,
    event: audit.Event,
) -> PatientContact:
    await _profile_or_refuse(session, who, patient_id, event)
    row = await session.get(PatientContact, contact_id, with_for_update=True)
    if row is None or row.patient_id != patient_id:
        await audit.refuse(
            session,
            who.actor,
            replace(event, outcome="not_found"),
            NotFound("No such contact point."),
        )
    return row


class Contacts(msgspec.Struct, frozen=True, kw_only=True):
    contacts: list[Contact]


@operation(
    Operation(
        operation_id="deletePatientContact",
        summary="Remove a contact point (an opt-out of its address is kept on the others)",
        scope=VERIFY_SCOPE,
        parameters=_CONTACT,
        response=Contacts,
        errors=("401", "403", "404"),
        description="Allowed to: pharmacist, technician. The profile's remaining contacts.",
    )
)
async def delete_contact(request: web.Request) -> web.Response:
    """``DELETE /api/v1/patients/{id}/contacts/{contact}``."""
    who = await _changer(request)
    patient_id, contact_id = path_uuid(request, "patient"), _contact_id(request)
    event = audit.Event(
        "patient.contact.delete", "patient", str(patient_id), detail={"contact_id": str(contact_id)}
    )
    async with audit.refusable(request.app[DATABASE]) as session:
        row = await _own_contact(session, who, patient_id, contact_id, event)
        await session.delete(row)
        await session.flush()
        rest = await contacts.contacts_of(session, patient_id)
        await audit.add(session, who.actor, event)
    return respond(Contacts(contacts=[_contact(r) for r in rest]))


class Switch(msgspec.Struct, frozen=True, kw_only=True):
    kind: Annotated[str, msgspec.Meta(description="an event kind (see the GET's consent)")]
    channel: Literal["email", "sms"]
    allowed: bool


class ConsentChange(msgspec.Struct, frozen=True, kw_only=True):
    switches: Annotated[list[Switch], msgspec.Meta(min_length=1, max_length=64)]


@operation(
    Operation(
        operation_id="putPatientConsent",
        summary="Switch notification kinds on or off per channel",
        scope=VERIFY_SCOPE,
        parameters=_PATIENT,
        body=ConsentChange,
        response=ProfilePreferences,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description="Allowed to: pharmacist, technician. The switches given change; the "
        "others stay. 422 for a kind the patient does not switch (a sign-in code, the SMS "
        "keywords' answers) or does not exist.",
    )
)
async def put_consent(request: web.Request) -> web.Response:
    """``PUT /api/v1/patients/{id}/consent``."""
    who = await _changer(request)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, ConsentChange, MAX_BODY)
    kinds = {k.value for k in CONSENT_KINDS}
    unknown = sorted({s.kind for s in body.switches} - kinds)
    if unknown:
        raise Unprocessable(
            "consent_invalid", f"{unknown[0]!r} is not a kind a patient switches: {sorted(kinds)}."
        )
    event = audit.Event("patient.consent.update", "patient", str(patient_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        await _profile_or_refuse(session, who, patient_id, event)
        prefs = await contacts.switch_consent(
            session, patient_id, [(s.kind, s.channel, s.allowed) for s in body.switches]
        )
        view = _view(prefs, await contacts.contacts_of(session, patient_id))
        detail = {"switches": [msgspec.to_builtins(s) for s in body.switches]}
        await audit.add(session, who.actor, replace(event, detail=detail))
    return respond(view)
