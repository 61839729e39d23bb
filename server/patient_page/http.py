"""The signed-in patient's own API (the patient session cookie, :mod:`.signin`): who they
are, their prescriptions in plain words, asking for a refill, their preferences and
notification consent, their open consult invitations. Everything is the session's patient's
in the session's pharmacy: another's prescription is 404, audited as a miss. Every read and
change is audited with the patient as the actor.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.contacts import CONSENT_KINDS, Channel, consented
from eprescribe.ncpdp import Patient, from_json, to_json
from eprescribe.patient_page import WORDS, RefillKind, refill_kind, status_of

from .. import audit
from ..admin.models import Pharmacy
from ..consults.invites import open_invite
from ..consults.models import ConsultRow
from ..db import DATABASE
from ..db.models import utcnow
from ..dispensing.models import Fill, Shipment
from ..errors import NotFound, Unprocessable
from ..http import read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation, path
from ..patients import contacts
from ..patients.models import PatientProfile
from ..prescriptions import store as prescriptions
from ..prescriptions.models import Prescription
from ..settings import SETTINGS
from . import store
from .signin import Signed, signed_in

MAX_BODY = 4096
_ERRORS = ("401",)
_CHANGE_ERRORS = ("400", "401", "403", "404", "413", "415", "422")
_SESSION = "The patient session cookie (POST /api/v1/me/sign-in)."


class Me(msgspec.Struct, frozen=True, kw_only=True):
    first_name: str
    pharmacy: str
    pharmacy_phone: str | None
    csrf: str
    session_started_at: Timestamp


class Request(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["refill", "renewal"]
    state: str
    created_at: Timestamp


class MyPrescription(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    drug: str
    status: Annotated[str, msgspec.Meta(description="a status code (eprescribe.patient_page)")]
    status_text: Annotated[str, msgspec.Meta(description="the status in plain words")]
    rx_number: str | None
    updated_at: Timestamp
    can_ask: Annotated[
        Literal["refill", "renewal"] | None,
        msgspec.Meta(description="what the patient may ask for now (none: nothing)"),
    ]
    request: Request | None


class MyPrescriptions(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MyPrescription]


class MyContact(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    value: str
    verified: bool
    opted_out: bool


class MyPreferences(msgspec.Struct, frozen=True, kw_only=True):
    preferred_channel: str
    pickup_or_delivery: str | None
    generic_or_brand: str | None
    easy_open_caps: bool
    large_print_labels: bool
    ninety_day_supply: bool
    contacts: list[MyContact]
    consent: Annotated[
        dict[str, dict[str, bool]],
        msgspec.Meta(description="event kind -> channel (email, sms) -> allowed"),
    ]


class Switch(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    channel: Literal["email", "sms"]
    allowed: bool


class ConsentChange(Body, frozen=True):
    switches: Annotated[list[Switch], msgspec.Meta(min_length=1, max_length=64)]


class PreferenceChange(Body, frozen=True):
    preferred_channel: Literal["email", "sms", "none"] | None = None
    pickup_or_delivery: Literal["pickup", "delivery"] | None = None
    generic_or_brand: Literal["generic", "brand"] | None = None
    easy_open_caps: bool | None = None
    large_print_labels: bool | None = None
    ninety_day_supply: bool | None = None


class Invite(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    state: str
    expires_at: Timestamp
    url: Annotated[
        str | None,
        msgspec.Meta(description="the invitation's link; null for one sent before links were kept"),
    ]


class Invites(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Invite]


def _event(me: Signed, action: str, **detail: object) -> audit.Event:
    return audit.Event(
        action, "patient", str(me.row.patient_id), pharmacy_id=me.row.pharmacy_id, detail=detail
    )


@operation(
    Operation(
        operation_id="getMe",
        summary="The signed-in patient: first name, pharmacy, the session's CSRF token",
        scope=None,
        response=Me,
        errors=_ERRORS,
        description=_SESSION,
    )
)
async def get_me(request: web.Request) -> web.Response:
    """``GET /api/v1/me``."""
    me = await signed_in(request)
    async with request.app[DATABASE].transaction() as session:
        profile = await session.get_one(PatientProfile, me.row.patient_id)
        pharmacy = await session.get_one(Pharmacy, me.row.pharmacy_id)
        await audit.add(session, me.actor, _event(me, "patient.me.read"))
    first = _first_name(profile)
    return respond(
        Me(
            first_name=first,
            pharmacy=pharmacy.name,
            pharmacy_phone=pharmacy.phone,
            csrf=me.row.csrf,
            session_started_at=me.row.created_at.isoformat(),
        )
    )


def _first_name(profile: PatientProfile) -> str:
    demographics = from_json(Patient, profile.demographics)
    name = to_json(demographics.name) if demographics.name else {}
    first = name.get("first") if isinstance(name, dict) else None
    return str(first or profile.first_name_key).title()


async def _requests(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, store.RefillRequest]:
    """The newest request of each prescription."""
    rows = await session.scalars(
        select(store.RefillRequest)
        .where(store.RefillRequest.prescription_id.in_(ids))
        .order_by(store.RefillRequest.created_at)
    )
    return {r.prescription_id: r for r in rows}


def _mine(me: Signed) -> list[ColumnElement[bool]]:
    return [
        Prescription.patient_id == me.row.patient_id,
        Prescription.pharmacy_id == me.row.pharmacy_id,
        Prescription.test.is_(False),
    ]


@operation(
    Operation(
        operation_id="listMyPrescriptions",
        summary="The patient's prescriptions, their status in plain words, what may be asked",
        scope=None,
        response=MyPrescriptions,
        errors=_ERRORS,
        description=_SESSION,
    )
)
async def list_prescriptions(request: web.Request) -> web.Response:
    """``GET /api/v1/me/prescriptions``."""
    me = await signed_in(request)
    async with request.app[DATABASE].transaction() as session:
        rows = list(
            await session.scalars(
                select(Prescription)
                .where(*_mine(me))
                .order_by(Prescription.updated_at.desc())
                .limit(200)
            )
        )
        ids = [r.id for r in rows]
        values = await session.run_sync(
            lambda s: prescriptions.load(s, ids, pharmacy_id=me.row.pharmacy_id, requests=True)
        )
        asked = await _requests(session, ids)
        shipped = await _out_for_delivery(session, ids)
        items = [
            _item(r, values[r.id], asked.get(r.id), r.id in shipped) for r in rows if r.id in values
        ]
        await audit.add(
            session, me.actor, _event(me, "patient.prescriptions.read", count=len(items))
        )
    return respond(MyPrescriptions(items=items))


async def _out_for_delivery(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The prescriptions among ``ids`` whose fill is shipped and not delivered yet."""
    if not ids:
        return set()
    found = await session.scalars(
        select(Fill.prescription_id)
        .join(Shipment, Shipment.fill_id == Fill.id)
        .where(Fill.prescription_id.in_(ids), Shipment.state == "shipped")
    )
    return set(found)


def _item(
    row: Prescription, rx: object, asked: store.RefillRequest | None, shipped: bool = False
) -> MyPrescription:
    status = status_of(row.state, shipped=shipped)
    kind = refill_kind(rx)  # type: ignore[arg-type]
    open_request = asked is not None and asked.state == "open"
    return MyPrescription(
        id=row.id,
        drug=row.drug_description,
        status=status.value,
        status_text=WORDS[status],
        rx_number=row.rx_number,
        updated_at=row.updated_at.isoformat(),
        can_ask=None if open_request or kind is None else kind.value,
        request=Request(
            kind=asked.kind,  # type: ignore[arg-type]
            state=asked.state,
            created_at=asked.created_at.isoformat(),
        )
        if asked is not None
        else None,
    )


@operation(
    Operation(
        operation_id="askMyRefill",
        summary="The patient asks for more: a refill (refills remain) or a renewal",
        scope=None,
        parameters=[path("id", "the prescription")],
        response=MyPrescription,
        errors=("401", "403", "404", "422"),
        description=_SESSION + " With X-CSRF-Token. The request waits for the pharmacy's "
        "staff (GET /api/v1/refill-requests): they start the fill, or ask the prescriber "
        "for a renewal (RxRenewalRequest). 422 refill_unavailable when nothing may be asked "
        "(still being prepared, cancelled, renewal prohibited by the prescriber, or a request "
        "already open).",
    )
)
async def ask_refill(request: web.Request) -> web.Response:
    """``POST /api/v1/me/prescriptions/{id}/refill``."""
    me = await signed_in(request, change=True)
    try:
        rx_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound("No such prescription.") from None
    event = _event(me, "patient.refill.request", prescription_id=str(rx_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        row = await session.scalar(select(Prescription).where(Prescription.id == rx_id, *_mine(me)))
        if row is None:
            await audit.refuse(
                session,
                me.actor,
                audit.Event(event.action, "patient", event.resource_id, "not_found",
                            event.pharmacy_id, event.detail),
                NotFound("No such prescription."),
            )  # fmt: skip
        values = await session.run_sync(
            lambda s: prescriptions.load(s, [rx_id], pharmacy_id=me.row.pharmacy_id, requests=True)
        )
        rx = values[rx_id]
        kind = refill_kind(rx)
        if kind is None or await store.open_request(session, rx_id) is not None:
            await audit.refuse(
                session,
                me.actor,
                audit.Event(event.action, "patient", event.resource_id, "refused",
                            event.pharmacy_id, {**event.detail, "refused": "unavailable"}),
                Unprocessable("refill_unavailable", _why_not(rx, kind)),
            )  # fmt: skip
        added = await store.add_request(
            session, me.row.pharmacy_id, me.row.patient_id, rx_id, kind.value
        )
        item = _item(row, rx, added)
        await audit.add(
            session,
            me.actor,
            audit.Event(event.action, "patient", event.resource_id, "success", event.pharmacy_id,
                        {**event.detail, "request_id": str(added.id), "kind": kind.value}),
        )  # fmt: skip
    return respond(item)


def _why_not(rx: object, kind: RefillKind | None) -> str:
    if kind is not None:
        return "You asked already: the pharmacy has your request."
    return "This prescription cannot be refilled from here now. Please call your pharmacy."


# -- preferences and consent -------------------------------------------------------------------


async def _preferences_view(session: AsyncSession, patient_id: uuid.UUID) -> MyPreferences:
    prefs = await contacts.preferences_of(session, patient_id)
    rows = await contacts.contacts_of(session, patient_id)
    return MyPreferences(
        preferred_channel=prefs.preferred_channel,
        pickup_or_delivery=prefs.pickup_or_delivery,
        generic_or_brand=prefs.generic_or_brand,
        easy_open_caps=prefs.easy_open_caps,
        large_print_labels=prefs.large_print_labels,
        ninety_day_supply=prefs.ninety_day_supply,
        contacts=[
            MyContact(
                kind=r.kind,
                value=r.value,
                verified=r.verified_at is not None,
                opted_out=r.opted_out_at is not None,
            )
            for r in rows
        ],
        consent={
            k.value: {c.value: consented(prefs.consent, k, c) for c in Channel}
            for k in CONSENT_KINDS
        },
    )


@operation(
    Operation(
        operation_id="getMyPreferences",
        summary="The patient's preferences, contact points and notification consent",
        scope=None,
        response=MyPreferences,
        errors=_ERRORS,
        description=_SESSION,
    )
)
async def get_preferences(request: web.Request) -> web.Response:
    """``GET /api/v1/me/preferences``."""
    me = await signed_in(request)
    async with request.app[DATABASE].transaction() as session:
        view = await _preferences_view(session, me.row.patient_id)
        await audit.add(session, me.actor, _event(me, "patient.preferences.read"))
    return respond(view)


@operation(
    Operation(
        operation_id="putMyPreferences",
        summary="The patient changes their preferences (the members given)",
        scope=None,
        body=PreferenceChange,
        response=MyPreferences,
        errors=_CHANGE_ERRORS,
        description=_SESSION + " With X-CSRF-Token. 422 preferences_invalid for a channel "
        "while the pharmacy has no time zone for the patient (quiet hours need one).",
    )
)
async def put_preferences(request: web.Request) -> web.Response:
    """``PUT /api/v1/me/preferences``."""
    me = await signed_in(request, change=True)
    body = await read_json_as(request, PreferenceChange, MAX_BODY)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
    event = _event(me, "patient.preferences.update", changed=sorted(changes))
    async with audit.refusable(request.app[DATABASE]) as session:
        await contacts.own_profile(session, me.row.patient_id, me.row.pharmacy_id)
        prefs = await contacts.preferences_of(session, me.row.patient_id)
        channel = changes.get("preferred_channel")
        if channel not in (None, "none") and prefs.time_zone is None:
            await audit.refuse(
                session,
                me.actor,
                audit.Event(event.action, "patient", event.resource_id, "refused",
                            event.pharmacy_id, {**event.detail, "refused": "no_time_zone"}),
                Unprocessable("preferences_invalid", "Ask your pharmacy to set your time zone "
                              "first, so no message reaches you at night."),
            )  # fmt: skip
        for name, value in changes.items():
            setattr(prefs, name, value)
        prefs.updated_at = utcnow()
        session.add(prefs)
        await session.flush()
        view = await _preferences_view(session, me.row.patient_id)
        await audit.add(session, me.actor, event)
    return respond(view)


@operation(
    Operation(
        operation_id="putMyConsent",
        summary="The patient switches notification kinds on or off per channel",
        scope=None,
        body=ConsentChange,
        response=MyPreferences,
        errors=_CHANGE_ERRORS,
        description=_SESSION + " With X-CSRF-Token. The switches given change, the others "
        "stay (the same rules as the console's PUT /api/v1/patients/{id}/consent).",
    )
)
async def put_consent(request: web.Request) -> web.Response:
    """``PUT /api/v1/me/consent``."""
    me = await signed_in(request, change=True)
    body = await read_json_as(request, ConsentChange, MAX_BODY)
    switches: list[tuple[str, str, bool]] = [(s.kind, s.channel, s.allowed) for s in body.switches]
    try:
        contacts.check_switches(switches)
    except ValueError as exc:
        raise Unprocessable("consent_invalid", str(exc)) from None
    event = _event(me, "patient.consent.update", switches=[list(s) for s in switches])
    async with request.app[DATABASE].transaction() as session:
        await contacts.own_profile(session, me.row.patient_id, me.row.pharmacy_id)
        await contacts.switch_consent(session, me.row.patient_id, switches)
        view = await _preferences_view(session, me.row.patient_id)
        await audit.add(session, me.actor, event)
    return respond(view)


# -- consult invitations ----------------------------------------------------------------------


@operation(
    Operation(
        operation_id="listMyInvites",
        summary="The patient's open consult invitations",
        scope=None,
        response=Invites,
        errors=_ERRORS,
        description=_SESSION + " Scheduled consults whose invitation has not expired or been "
        "used, each with its link (the one the pharmacy sent).",
    )
)
async def list_invites(request: web.Request) -> web.Response:
    """``GET /api/v1/me/consults``."""
    me = await signed_in(request)
    now = utcnow()
    async with request.app[DATABASE].transaction() as session:
        rows = await session.scalars(
            select(ConsultRow)
            .where(
                ConsultRow.patient_id == me.row.patient_id,
                ConsultRow.pharmacy_id == me.row.pharmacy_id,
                ConsultRow.state == "scheduled",
                ConsultRow.invite_used_at.is_(None),
                ConsultRow.invite_expires_at > now,
            )
            .order_by(ConsultRow.invite_expires_at)
        )
        settings = request.app[SETTINGS]
        items = [
            Invite(
                id=r.id,
                state=r.state,
                expires_at=r.invite_expires_at.isoformat(),
                url=open_invite(settings, r.id, r.invite_sealed) if r.invite_sealed else None,
            )
            for r in rows
        ]
        await audit.add(session, me.actor, _event(me, "patient.consults.read", count=len(items)))
    return respond(Invites(items=items))
