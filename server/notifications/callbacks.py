"""``POST /api/v1/notifications/sms/status``: the SMS provider's delivery-status callbacks.

No bearer token: the provider signs each post (``X-Twilio-Signature``, checked with the SMS
auth token against the URL the hub is reached at, its issuer); anything unsigned or signed
wrongly is refused (403) before it is read further. A status for a message the hub does not
know (or does not know yet: the callback can outrun the worker's conclusion) is accepted and
ignored, so the provider does not post it again and again; the same status twice changes
nothing.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from ..db import DATABASE
from ..db.models import utcnow
from ..errors import BadRequest, Forbidden, UnsupportedMediaType
from ..http import read_body, respond
from ..openapi import Operation, operation
from ..settings import SETTINGS, Settings
from . import STATUS_PATH, store
from .sms import CallbackError, parse_status, verify_signature

FORM = "application/x-www-form-urlencoded"
#: a status callback has a dozen fields; more is not one
MAX_FIELDS = 64


class StatusRecorded(msgspec.Struct, frozen=True, kw_only=True):
    """What the hub made of the callback."""

    known: Annotated[bool, msgspec.Meta(description="whether the message is one the hub sent")]


@operation(
    Operation(
        operation_id="smsStatusCallback",
        summary="The SMS provider's delivery status of a notification (signed by the provider)",
        scope=None,
        response=StatusRecorded,
        errors=("400", "403", "413", "415"),
        description="A form post (application/x-www-form-urlencoded) with MessageSid, "
        "MessageStatus and, on failure, ErrorCode, signed in X-Twilio-Signature with the "
        "account's auth token: 403 when the signature does not verify.",
    )
)
async def sms_status(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type != FORM:
        raise UnsupportedMediaType(f"a status callback is {FORM}")
    body = await read_body(request, settings.max_form_bytes)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not a form") from None
    url = settings.issuer.rstrip("/") + request.path_qs
    signed = request.headers.get("X-Twilio-Signature", "")
    if not verify_signature(url, pairs, signed, settings.sms_auth_token):
        raise Forbidden("the provider's signature does not verify")
    try:
        callback = parse_status(dict(pairs))
    except CallbackError as exc:
        raise BadRequest(str(exc)) from None
    async with request.app[DATABASE].transaction() as session:
        state = await session.run_sync(lambda s: store.provider_status(s, callback, utcnow()))
    return respond(StatusRecorded(known=state is not None))


def setup(app: web.Application, settings: Settings) -> None:
    """The provider's callbacks (publishing and the sweep are ``server.worker``'s)."""
    app.router.add_post(STATUS_PATH, sms_status)
