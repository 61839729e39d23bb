"""Time-limited TURN credentials for coturn's ``use-auth-secret`` (TURN REST API draft).

The hub and coturn share a secret; for each consult participant the hub mints
``username = "<expiry unix time>:<consult id>"`` and ``credential = base64(HMAC-SHA1(secret,
username))``. coturn recomputes the HMAC and refuses the username once its time has passed, so
no static TURN password ever reaches a browser, and a leaked credential dies with its TTL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

#: long enough for a consult, reconnects included; short enough that a leak soon expires
DEFAULT_TTL = dt.timedelta(hours=2)
_TURN_SCHEMES = ("turn:", "turns:")


@dataclass(frozen=True, slots=True)
class IceServer:
    """One ``RTCIceServer`` entry as browsers and aiortc take it."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def to_json(self) -> dict[str, object]:
        entry: dict[str, object] = {"urls": list(self.urls)}
        if self.username is not None:
            entry.update(username=self.username, credential=self.credential)
        return entry


def credential_for(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def mint(
    secret: str, consult_id: str, now: dt.datetime, ttl: dt.timedelta = DEFAULT_TTL
) -> tuple[str, str]:
    """A (username, credential) pair valid until ``now + ttl``."""
    if not secret:
        raise ValueError("a TURN secret is needed to mint credentials")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not consult_id or ":" in consult_id:
        raise ValueError("the consult id must be non-empty and contain no ':'")
    expiry = int((now + ttl).timestamp())
    username = f"{expiry}:{consult_id}"
    return username, credential_for(secret, username)


def ice_servers(
    urls: tuple[str, ...], secret: str, consult_id: str, now: dt.datetime
) -> list[IceServer]:
    """The ICE servers for one participant: STUN URLs as they are, TURN URLs with fresh
    credentials (one entry, since they share them). No URLs: host candidates only."""
    stun = tuple(u for u in urls if not u.startswith(_TURN_SCHEMES))
    turn = tuple(u for u in urls if u.startswith(_TURN_SCHEMES))
    servers = [IceServer(stun)] if stun else []
    if turn:
        username, credential = mint(secret, consult_id, now)
        servers.append(IceServer(turn, username, credential))
    return servers


def still_valid(secret: str, username: str, credential: str, now: dt.datetime) -> bool:
    """What coturn checks: the HMAC matches and the expiry has not passed."""
    expiry, _, _ = username.partition(":")
    if not (expiry.isascii() and expiry.isdigit()) or int(expiry) <= now.timestamp():
        return False
    return hmac.compare_digest(credential, credential_for(secret, username))
