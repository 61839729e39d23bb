"""The demo prescriber system: what a prescriber's EHR sees of the hub, for ``make run`` only.

With ``TELEPHARM_DEMO_EHR=1`` (which ``make run`` sets, and nothing else; the settings refuse it
unless the issuer is on loopback) the hub serves, beside itself:

- ``POST /demo/ehr/script``: the demo EHR client's SCRIPT endpoint. The hub's outbox delivers
  there like anywhere else. It takes a message only with the bearer token registered for an
  endpoint at this path (``telepharm demo`` registers one, with a generated token), reads it
  with the hub's own SCRIPT parser, answers ``Status`` 000 (or ``Error`` when it does not
  parse), and keeps the last :data:`KEEP` messages in this process's memory;
- ``GET /demo/ehr``: a read-only page listing them, the newest first.

Off (the default), neither route exists. Nothing here is written to the database, and the log
names only the transaction and its MessageID.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import hmac
import html
import logging
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from eprescribe.ncpdp import (
    Message,
    Party,
    ScriptRejection,
    SenderSoftware,
    build_rejection,
    build_status,
    parse_message,
    reply_context,
    salvage_reply_context,
)
from eprescribe.ncpdp.outbound import (
    CANCEL_DENIAL_REASONS,
    CancelRxResponse,
    ChangeRequestCode,
    RxChangeRequest,
    RxRenewalRequest,
)

from . import admin
from .auth.credentials import SECRETS, SecretBox
from .auth.models import OAuthClient
from .db import DATABASE, Database
from .db.models import utcnow
from .errors import Unauthorized
from .http import read_body, require_content_type
from .outbox import endpoint_context
from .settings import SETTINGS, SOFTWARE_VERSION, Settings

log = logging.getLogger(__name__)

SCRIPT_PATH = "/demo/ehr/script"
PAGE_PATH = "/demo/ehr"
#: how many received messages the page lists (older ones are forgotten)
KEEP = 100
SOFTWARE = SenderSoftware("Telepharm", "Telepharm Demo EHR", SOFTWARE_VERSION)
DEMO_EHR = Party("ZZZ", "TELEPHARM-DEMO-EHR")
HUB = Party("ZZZ", "TELEPHARM-HUB")
XML_TYPES = ("application/xml", "text/xml")


@dataclass(frozen=True, slots=True)
class Received:
    """One message the demo EHR took, as the page shows it."""

    at: dt.datetime
    transaction: str
    message_id: str
    relates_to_message_id: str | None
    summary: str


class Inbox:
    """The last ``keep`` messages received, in this process's memory."""

    def __init__(self, keep: int = KEEP) -> None:
        self._items: collections.deque[Received] = collections.deque(maxlen=keep)

    def add(self, item: Received) -> None:
        self._items.append(item)

    def newest_first(self) -> list[Received]:
        return list(reversed(self._items))


#: what the demo EHR received (present only when it is on)
INBOX: web.AppKey[Inbox] = web.AppKey("demo_ehr_inbox")


def summarize(message: Message) -> str:
    """What the prescriber is asked or told, in a line."""
    body = message.body
    if isinstance(body, RxChangeRequest):
        kind = ChangeRequestCode(body.request_code).name.replace("_", " ").lower()
        notes = [line.note for line in body.medication_requested if line.note]
        return f"{kind}: {' / '.join(notes)}" if notes else kind
    if isinstance(body, CancelRxResponse):
        if body.approved:
            return f"cancel approved{f': {body.text}' if body.text else ''}"
        reasons = ", ".join(
            f"{code} ({CANCEL_DENIAL_REASONS.get(code, 'unlisted')})" for code in body.reason_codes
        )
        return f"cancel denied: {reasons}{f'. {body.text}' if body.text else ''}"
    if isinstance(body, RxRenewalRequest):
        return f"renewal asked for {body.medication_dispensed.drug_description}"
    return message.transaction


async def script(request: web.Request) -> web.Response:
    """Take one SCRIPT message from the hub, as a prescriber's system would."""
    await _authenticate(request)
    require_content_type(request, XML_TYPES)
    raw = await read_body(request, request.app[SETTINGS].max_message_bytes)
    try:
        message = parse_message(raw)
    except ScriptRejection as rejection:
        log.info("demo EHR refused a message: %s", rejection.description_code)
        ctx = salvage_reply_context(raw, fallback_to=HUB, fallback_from=DEMO_EHR)
        reply = build_rejection(
            ctx, rejection, message_id=_new_id(), sent_time=utcnow(), software=SOFTWARE
        )
        return web.Response(body=reply, content_type="application/xml", charset="utf-8")
    header = message.header
    request.app[INBOX].add(
        Received(
            utcnow(),
            message.transaction,
            header.message_id,
            header.relates_to_message_id,
            summarize(message),
        )
    )
    log.info("demo EHR received %s %s", message.transaction, header.message_id)
    reply = build_status(
        reply_context(header),
        code="000",
        message_id=_new_id(),
        sent_time=utcnow(),
        software=SOFTWARE,
    )
    return web.Response(body=reply, content_type="application/xml", charset="utf-8")


def _new_id() -> str:
    return uuid.uuid4().hex


async def _authenticate(request: web.Request) -> None:
    """The bearer token must be one registered for an endpoint at this path."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        expected = await _registered_tokens(request.app[DATABASE], request.app[SECRETS])
        presented = token.strip().encode()
        if any(hmac.compare_digest(presented, known.encode()) for known in expected):
            return
    raise Unauthorized(
        "Present the token registered for this endpoint.",
        headers={"WWW-Authenticate": 'Bearer realm="demo-ehr"'},
    )


async def _registered_tokens(db: Database, box: SecretBox) -> list[str]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(OAuthClient.client_id, OAuthClient.endpoint, OAuthClient.endpoint_token).where(
                OAuthClient.endpoint.like(f"%{SCRIPT_PATH}"),
                OAuthClient.endpoint_token.is_not(None),
            )
        )
    tokens = []
    for client_id, endpoint, sealed in rows:
        if sealed is None or urlsplit(endpoint).path != SCRIPT_PATH:
            continue
        try:
            tokens.append(box.open(sealed, endpoint_context(client_id)))
        except (InvalidTag, ValueError):  # sealed with another data dir's key
            continue
    return tokens


async def page(request: web.Request) -> web.Response:
    """The prescriber's side: what the demo EHR received, the newest first."""
    rows = "".join(_row(item) for item in request.app[INBOX].newest_first())
    empty = f'<tr><td colspan="5">{_NOTHING_YET}</td></tr>'
    document = _PAGE.format(style=_STYLE, keep=KEEP, rows=rows or empty)
    return web.Response(text=document, content_type="text/html", headers=_PAGE_HEADERS)


def _row(item: Received) -> str:
    cells = (
        item.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        item.transaction,
        item.message_id,
        item.relates_to_message_id or "",
        item.summary,
    )
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"


_NOTHING_YET = (
    "Nothing yet. Send the sample NewRx, then ask the prescriber a question from the console "
    "(or send a CancelRx): the hub's message arrives here."
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}code{font-size:.9em}"
)
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Demo EHR: messages from the hub</title><style>{style}</style></head>
<body><h1>Demo EHR: the prescriber's side</h1>
<p>The SCRIPT messages the hub sent to the demo prescriber system, the newest first (the last
{keep}, kept in the hub process's memory only). Each was answered <code>Status</code> 000.
This page exists only while <code>TELEPHARM_DEMO_EHR=1</code>.</p>
<table><thead><tr><th>received</th><th>type</th><th>MessageID</th><th>RelatesToMessageID</th>
<th>summary</th></tr></thead><tbody>{rows}</tbody></table></body></html>
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def endpoint_url(settings: Settings) -> str:
    return f"{settings.issuer}{SCRIPT_PATH}"


async def register_endpoint(
    db: Database, box: SecretBox, settings: Settings, client_id: str
) -> str:
    """Make the demo EHR's endpoint ``client_id``'s, with a generated token, unless it already
    is; an endpoint an operator registered elsewhere is kept. The endpoint it has now."""
    url = endpoint_url(settings)
    async with db.sessions() as session:
        found = (
            await session.execute(
                select(OAuthClient.endpoint, OAuthClient.endpoint_token).where(
                    OAuthClient.client_id == client_id
                )
            )
        ).one_or_none()
    if found is None:
        raise admin.AdminError(f"no client {client_id}")
    current, sealed = found
    if current == url and sealed is not None:
        return url
    if current is not None and urlsplit(current).path != SCRIPT_PATH:
        return str(current)
    # none yet, or the demo EHR of an earlier issuer (another port): this one
    await admin.set_endpoint(db, client_id, admin.Endpoint(url, secrets.token_urlsafe(32)), box)
    return url


def setup(app: web.Application, settings: Settings) -> None:
    """The demo EHR's routes, only when it is on."""
    if not settings.demo_ehr:
        return
    app[INBOX] = Inbox()
    app.router.add_post(SCRIPT_PATH, script)
    app.router.add_get(PAGE_PATH, page)
