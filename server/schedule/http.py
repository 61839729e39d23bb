"""The pharmacy's switches of the events that notify its patients:
``GET /api/v1/notification-settings`` and ``PUT`` (pharmacists; audited). A kind switched off
writes no notification for any of the pharmacy's patients, whatever their consent."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy.orm import Session

from eprescribe.notifications import EventKind

from .. import audit
from ..callers import PHARMACIST, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import Unprocessable
from ..http import read_json_as, respond
from ..openapi import Body, Operation, operation
from ..prescriptions.queue import SCOPE
from . import switches

MAX_BODY = 4096
PATH = "/api/v1/notification-settings"


class Switch(Body, frozen=True):
    kind: Annotated[str, msgspec.Meta(description="an event kind, e.g. refill_due")]
    enabled: bool


class SwitchesBody(Body, frozen=True):
    switches: Annotated[list[Switch], msgspec.Meta(min_length=1, max_length=20)]


class NotificationSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: Annotated[
        dict[str, bool], msgspec.Meta(description="event kind -> sent to the patients")
    ]


@operation(
    Operation(
        operation_id="getNotificationSettings",
        summary="Which events notify the pharmacy's patients",
        scope=SCOPE,
        response=NotificationSettings,
        errors=("401", "403"),
        description="Allowed to: pharmacist.",
    )
)
async def get_settings(request: web.Request) -> web.Response:
    """``GET /api/v1/notification-settings``."""
    who = await caller(request, SCOPE)
    who.require_role(PHARMACIST)
    async with request.app[DATABASE].transaction() as session:
        found = await session.run_sync(lambda s: switches.all_of(s, who.pharmacy_id))
        await audit.add(session, who.actor, audit.Event("pharmacy.notifications.read", "pharmacy",
                                                        str(who.pharmacy_id)))  # fmt: skip
    return respond(NotificationSettings(enabled=found))


@operation(
    Operation(
        operation_id="putNotificationSettings",
        summary="Switch events that notify the pharmacy's patients on or off",
        scope=SCOPE,
        body=SwitchesBody,
        response=NotificationSettings,
        errors=("400", "401", "403", "413", "415", "422"),
        description="Allowed to: pharmacist. 422: a kind that cannot be switched (a sign-in "
        "code, the keyword answers) or is unknown.",
    )
)
async def put_settings(request: web.Request) -> web.Response:
    """``PUT /api/v1/notification-settings``: the switches given; the others unchanged."""
    who = await caller(request, SCOPE)
    who.require_role(PHARMACIST)
    body = await read_json_as(request, SwitchesBody, MAX_BODY)
    known = {k.value for k in switches.SWITCHABLE}
    for switch in body.switches:
        if switch.kind not in known:
            raise Unprocessable("kind_invalid", f"The kinds are {', '.join(sorted(known))}.")
    now = utcnow()
    changed = {s.kind: s.enabled for s in body.switches}
    async with request.app[DATABASE].transaction() as session:
        await session.run_sync(lambda s: _put_all(s, who.pharmacy_id, changed, now))
        found = await session.run_sync(lambda s: switches.all_of(s, who.pharmacy_id))
        event = audit.Event("pharmacy.notifications.changed", "pharmacy", str(who.pharmacy_id),
                            detail={"enabled": changed})  # fmt: skip
        await audit.add(session, who.actor, event)
    return respond(NotificationSettings(enabled=found))


def _put_all(
    session: Session, pharmacy_id: uuid.UUID, changed: dict[str, bool], now: dt.datetime
) -> None:
    for kind, on in changed.items():
        switches.put(session, pharmacy_id, EventKind(kind), on, now)


def routes(app: web.Application) -> None:
    app.router.add_get(PATH, get_settings)
    app.router.add_put(PATH, put_settings)
