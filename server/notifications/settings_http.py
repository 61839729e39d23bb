"""A pharmacy's notification settings, one route for all of them:
``GET /api/v1/notifications/settings`` and ``PUT``. Two settings live there, each changed by the
role that answers for it: which events notify the pharmacy's patients (the switches,
:mod:`server.schedule.switches`: pharmacists, who see the patients' side; a kind switched off
writes no notification for any of the pharmacy's patients, whatever their consent) and whether
drug names may show in texts and email subjects (:mod:`.template_store`: pharmacy admins, who
own the templates). Both roles read both. The caller's own pharmacy only; every read and change
audited, a refused change too."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eprescribe.notifications import EventKind

from .. import audit
from ..callers import PHARMACIST, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import BadRequest, Conflict, Unprocessable
from ..http import read_json_as, respond
from ..openapi import Body, Operation, operation
from ..schedule import switches
from ..settings import Settings
from . import template_store
from .templates_http import ADMIN, SCOPE

PATH = "/api/v1/notifications/settings"
MAX_BODY = 4096


class Switch(Body, frozen=True):
    kind: Annotated[str, msgspec.Meta(description="an event kind, e.g. refill_due")]
    enabled: bool


class SettingsChange(Body, frozen=True):
    """What to change (one member at least; the others stay as they are)."""

    #: event kinds switched on or off (pharmacists)
    switches: (
        Annotated[list[Switch], msgspec.Meta(min_length=1, max_length=20)] | msgspec.UnsetType
    ) = msgspec.UNSET
    #: drug names allowed in texts and email subjects (pharmacy admins)
    allow_drug_names: bool | msgspec.UnsetType = msgspec.UNSET


class NotificationSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: Annotated[
        dict[str, bool], msgspec.Meta(description="event kind -> sent to the patients")
    ]
    allow_drug_names: Annotated[
        bool, msgspec.Meta(description="drug names may show in texts and email subjects")
    ]


def _settings(session: Session, pharmacy_id: uuid.UUID) -> NotificationSettings:
    return NotificationSettings(
        enabled=switches.all_of(session, pharmacy_id),
        allow_drug_names=template_store.allow_drug_names(session, pharmacy_id),
    )


@operation(
    Operation(
        operation_id="getNotificationSettings",
        summary="Which events notify the pharmacy's patients, and whether drug names may show",
        scope=SCOPE,
        response=NotificationSettings,
        errors=("401", "403"),
        description="Allowed to: pharmacist, pharmacy_admin.",
    )
)
async def get_settings(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(PHARMACIST, ADMIN)
    async with request.app[DATABASE].transaction() as session:
        found = await session.run_sync(_settings, who.pharmacy_id)
        await audit.add(session, who.actor, audit.Event("pharmacy.notifications.read", "pharmacy",
                                                        str(who.pharmacy_id)))  # fmt: skip
    return respond(found)


@operation(
    Operation(
        operation_id="updateNotificationSettings",
        summary="Switch events that notify the pharmacy's patients on or off; allow drug names "
        "in texts and email subjects, or not",
        scope=SCOPE,
        # one member at least: the type cannot say so, the schema does
        body=Annotated[SettingsChange, msgspec.Meta(extra_json_schema={"minProperties": 1})],
        response=NotificationSettings,
        errors=("400", "401", "403", "409", "413", "415", "422"),
        description="Allowed to: pharmacist (switches), pharmacy_admin (allow_drug_names); "
        "a change of both is refused to either. 422: a kind that cannot be switched (a "
        "sign-in code, the keyword answers) or is unknown.",
    )
)
async def update_settings(request: web.Request) -> web.Response:
    """The members given change, together or not at all; the response is every setting."""
    who = await caller(request, SCOPE)
    change = await read_json_as(request, SettingsChange, MAX_BODY)
    switched: dict[str, bool] = {}
    if change.switches is not msgspec.UNSET:
        known = {k.value for k in switches.SWITCHABLE}
        for switch in change.switches:
            if switch.kind not in known:
                raise Unprocessable("kind_invalid", f"The kinds are {', '.join(sorted(known))}.")
        switched = {s.kind: s.enabled for s in change.switches}
    allow = change.allow_drug_names
    if not switched and allow is msgspec.UNSET:
        raise BadRequest("Send switches and/or allow_drug_names.")
    pharmacy = str(who.pharmacy_id)
    try:
        async with audit.refusable(request.app[DATABASE]) as session:
            if switched:
                refused = audit.Event(
                    "pharmacy.notifications.changed",
                    "pharmacy",
                    pharmacy,
                    outcome="refused",
                    detail={"enabled": switched, "refused": "not_pharmacist"},
                )
                await who.require_role_audited(session, refused, PHARMACIST)
            if allow is not msgspec.UNSET:
                refused = audit.Event(
                    "notification_settings.update",
                    "notification_settings",
                    pharmacy,
                    outcome="refused",
                    pharmacy_id=who.pharmacy_id,
                    detail={"requested": {"allow_drug_names": allow}, "refused": "not_admin"},
                )
                await who.require_role_audited(session, refused, ADMIN)
            now = utcnow()
            if allow is not msgspec.UNSET:  # audited by the store, when it changes
                await session.run_sync(
                    template_store.set_allow_drug_names, who.actor, who.pharmacy_id, allow, now
                )
            if switched:
                await session.run_sync(_switch, who.pharmacy_id, switched, now)
            found = await session.run_sync(_settings, who.pharmacy_id)
            if switched:
                event = audit.Event("pharmacy.notifications.changed", "pharmacy", pharmacy,
                                    detail={"enabled": switched})  # fmt: skip
                await audit.add(session, who.actor, event)
    except IntegrityError:
        raise Conflict("The settings were changed at the same time; try again.") from None
    return respond(found)


def _switch(
    session: Session, pharmacy_id: uuid.UUID, changed: dict[str, bool], now: dt.datetime
) -> None:
    for kind, on in changed.items():
        switches.put(session, pharmacy_id, EventKind(kind), on, now)


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get(PATH, get_settings)
    app.router.add_put(PATH, update_settings)
