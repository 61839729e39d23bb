"""Known devices: browsers where a user has signed in before (password and TOTP).

After a sign-in the browser gets a long-lived cookie naming the user and a device ID, sealed
with the hub's secret box (AES-256-GCM, so it opens only on this hub and cannot be altered).
Sign-in attempts for that user from that browser are throttled under the device's own key
instead of the account's and the address's (:mod:`server.auth.throttle`): an attacker who keeps
an account or an address throttled does not keep its owner out. The cookie grants nothing
else: the password and the code are still needed, and a cookie of another user, a forged or
an expired one counts as no cookie.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from aiohttp import web
from cryptography.exceptions import InvalidTag

from .credentials import SECRETS
from .sessions import SESSIONS

DEVICE_TTL = dt.timedelta(days=90)
_CONTEXT = "known-device"


def _cookie(request: web.Request) -> str:
    return "__Host-tp_device" if request.app[SESSIONS].secure else "tp_device"


def known_device(request: web.Request, user_id: uuid.UUID | None, now: dt.datetime) -> str | None:
    """The ID of the request's device if it is a known device of ``user_id``, else None."""
    sealed = request.cookies.get(_cookie(request))
    if user_id is None or not sealed or len(sealed) > 200:
        return None
    try:
        owner, device, issued = request.app[SECRETS].open(sealed, _CONTEXT).split(" ")
        fresh = now - dt.datetime.fromtimestamp(int(issued), dt.UTC) < DEVICE_TTL
    except (InvalidTag, ValueError):
        return None
    return device if fresh and owner == str(user_id) else None


def remember_device(
    request: web.Request,
    response: web.StreamResponse,
    user_id: uuid.UUID,
    device: str | None,
    now: dt.datetime,
) -> None:
    """Mark the browser as a known device of ``user_id`` (keeping its ID if it was one)."""
    device = device or secrets.token_urlsafe(16)
    value = f"{user_id} {device} {int(now.timestamp())}"
    response.set_cookie(
        _cookie(request),
        request.app[SECRETS].seal(value, _CONTEXT),
        max_age=int(DEVICE_TTL.total_seconds()),
        path="/",
        secure=request.app[SESSIONS].secure,
        httponly=True,
        samesite="Strict",
    )
