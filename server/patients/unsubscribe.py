"""An email's unsubscribe link: ``/unsubscribe/{token}``, the token an HMAC of the contact
point's ID under a key of the hub's own (``unsubscribe.key`` in the keys dir, made on first
use), so a link names nothing and cannot be made for another address.

``POST`` opts the address out at once (RFC 8058 one-click: mail clients post
``List-Unsubscribe=One-Click`` to the ``List-Unsubscribe`` URL; any body does); ``GET`` shows
a small page with a button that posts it (a link scanner following the link changes nothing;
no script). A token that does not verify, or whose contact point was removed, is 404. The page
shows no address and no name: whoever holds the link learns nothing from it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from html import escape

from aiohttp import web

from eprescribe.contacts import Channel

from .. import audit
from ..auth.credentials import load_key
from ..auth.login import SECURITY_HEADERS
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import NotFound
from ..settings import SETTINGS
from . import contacts
from .models import PatientContact

PATH = "/unsubscribe/{token}"
KEY_FILE = "unsubscribe.key"
UNSUBSCRIBE_KEY: web.AppKey[bytes] = web.AppKey("unsubscribe_key")
_MAC_BYTES = 16


def token_for(key: bytes, contact_id: uuid.UUID) -> str:
    """The link's token: the contact point's ID and 128 bits of its HMAC-SHA256."""
    raw = contact_id.bytes + _mac(key, contact_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def contact_of(key: bytes, token: str) -> uuid.UUID | None:
    """The contact point ``token`` was made for; ``None`` when it was not made with ``key``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    if len(raw) != 16 + _MAC_BYTES:
        return None
    contact_id = uuid.UUID(bytes=raw[:16])
    return contact_id if hmac.compare_digest(raw[16:], _mac(key, contact_id)) else None


def _mac(key: bytes, contact_id: uuid.UUID) -> bytes:
    return hmac.new(key, b"unsubscribe:" + contact_id.bytes, hashlib.sha256).digest()[:_MAC_BYTES]


def unsubscribe_url(issuer: str, key: bytes, contact_id: uuid.UUID) -> str:
    """The link (and ``List-Unsubscribe`` URL) for an email to ``contact_id``."""
    return issuer.rstrip("/") + PATH.format(token=token_for(key, contact_id))


async def _contact(request: web.Request) -> PatientContact:
    found = contact_of(request.app[UNSUBSCRIBE_KEY], request.match_info["token"])
    row = None
    if found is not None:
        async with request.app[DATABASE].sessions() as session:
            row = await session.get(PatientContact, found)
    if row is None or row.kind != "email":
        raise NotFound("No such link.")
    return row


async def show(request: web.Request) -> web.Response:
    """``GET /unsubscribe/{token}``: the confirmation page."""
    row = await _contact(request)
    if row.opted_out_at is not None:
        return _page("You are unsubscribed", "<p>You no longer get emails from us.</p>")
    action = escape(request.path, quote=True)
    return _page(
        "Unsubscribe",
        "<p>Stop getting emails about your prescriptions?</p>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


async def unsubscribe(request: web.Request) -> web.Response:
    """``POST /unsubscribe/{token}``: opted out at once (audited)."""
    row = await _contact(request)
    ip = request.remote
    actor = audit.Actor("system", "unsubscribe-link", row.pharmacy_id, ip)
    async with request.app[DATABASE].transaction() as session:
        await contacts.opt_out(session, Channel.EMAIL, row.value, actor, utcnow())
    return _page("You are unsubscribed", "<p>You will not get more emails from us.</p>")


def _page(title: str, body: str) -> web.Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )
    return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)


async def key_ctx(app: web.Application) -> AsyncIterator[None]:
    app[UNSUBSCRIBE_KEY] = await asyncio.to_thread(load_key, app[SETTINGS].keys_dir / KEY_FILE)
    yield
