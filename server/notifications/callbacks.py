"""``POST /api/v1/notifications/sms/status``: the SMS provider's delivery-status callbacks;
``POST /api/v1/notifications/sms/inbound``: the texts patients send the hub's number, of which
STOP (and its synonyms) opts the number out at once and START opts it in again.

No bearer token: the provider signs each post (``X-Twilio-Signature``, checked with the SMS
auth token against the URL the hub is reached at, its issuer); anything unsigned or signed
wrongly is refused (403) before it is read further. A status for a message the hub does not
know (or does not know yet: the callback can outrun the worker's conclusion) is accepted and
ignored, so the provider does not post it again and again; the same status twice changes
nothing.

An inbound text is checked the same way. Its number is the patient's, so STOP opts out every
contact point with it, of every profile in every pharmacy the hub serves (audited per contact
point); the answer is 200 with an empty body (no TwiML: the provider sends its own STOP
confirmation). Other texts are accepted and not kept.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from ..audit import Actor
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import BadRequest, Forbidden, UnsupportedMediaType
from ..http import read_body, respond
from ..openapi import Operation, operation
from ..patients import contacts
from ..settings import SETTINGS, Settings
from . import INBOUND_PATH, STATUS_PATH, store
from .sms import CallbackError, Keyword, parse_inbound, parse_status, verify_signature

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
    pairs = await signed_form(request)
    try:
        callback = parse_status(dict(pairs))
    except CallbackError as exc:
        raise BadRequest(str(exc)) from None
    async with request.app[DATABASE].transaction() as session:
        state = await session.run_sync(lambda s: store.provider_status(s, callback, utcnow()))
    return respond(StatusRecorded(known=state is not None))


async def signed_form(request: web.Request) -> list[tuple[str, str]]:
    """The provider's form post, once its signature verifies against the URL the hub is
    reached at (403 otherwise, before anything else is read of it)."""
    settings = request.app[SETTINGS]
    if request.content_type != FORM:
        raise UnsupportedMediaType(f"a provider's callback is {FORM}")
    body = await read_body(request, settings.max_form_bytes)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not a form") from None
    url = settings.issuer.rstrip("/") + request.path_qs
    signed = request.headers.get("X-Twilio-Signature", "")
    if not verify_signature(url, pairs, signed, settings.sms_auth_token):
        raise Forbidden("the provider's signature does not verify")
    return pairs


#: who an opt-out by text is recorded as
INBOUND = Actor("system", "sms-inbound")


@operation(
    Operation(
        operation_id="smsInbound",
        summary="A text a patient sent (signed by the provider): STOP opts the number out",
        scope=None,
        errors=("400", "403", "413", "415"),
        media_type="text/plain",
        description="A form post (application/x-www-form-urlencoded) with From, Body and "
        "MessageSid, signed in X-Twilio-Signature: 403 when the signature does not verify. "
        "STOP and its synonyms opt the number out at once everywhere, START opts it in; the "
        "answer is an empty 200.",
    )
)
async def sms_inbound(request: web.Request) -> web.Response:
    pairs = await signed_form(request)
    try:
        inbound = parse_inbound(dict(pairs))
    except CallbackError as exc:
        raise BadRequest(str(exc)) from None
    if inbound.keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        switch = contacts.opt_out if inbound.keyword is Keyword.OPT_OUT else contacts.opt_in
        async with request.app[DATABASE].transaction() as session:
            await switch(session, "sms", inbound.sender, INBOUND, utcnow())
    return web.Response(status=200, content_type="text/plain")


def setup(app: web.Application, settings: Settings) -> None:
    """The provider's callbacks (publishing and the sweep are ``server.worker``'s)."""
    app.router.add_post(STATUS_PATH, sms_status)
    app.router.add_post(INBOUND_PATH, sms_inbound)
