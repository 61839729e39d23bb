"""What the browser grants (``grants.py``) and the authorization server (``oauth.py``) share:
the user tokens are issued for, the hub's access tokens and their verification, and
:class:`Flows`, the grants' way to storage, keys and the event loop.

A module of its own so that the grants need nothing of the server that registers them.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..db import Database
from .keys import ALGORITHM, SigningKeys
from .models import User
from .store import Bridge, FlowStore

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


@dataclass(frozen=True, slots=True)
class GrantUser:
    """The signed-in user a token is issued for (authlib reads ``get_user_id`` for ``sub``)."""

    id: uuid.UUID
    pharmacy_id: uuid.UUID
    role: str
    username: str
    auth_time: dt.datetime | None = None
    #: the sign-in (token family) the tokens belong to
    family: uuid.UUID | None = None

    def get_user_id(self) -> str:
        return str(self.id)

    def in_family(self, family: uuid.UUID, auth_time: dt.datetime | None = None) -> GrantUser:
        return dataclasses.replace(self, family=family, auth_time=auth_time)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a handler learns about the caller from a verified access token."""

    client_id: str
    subject: str  # the user's ID for user tokens, the client's otherwise
    scopes: frozenset[str]
    pharmacy_id: str | None
    expires_at: int
    role: str | None = None  # set on user tokens only (the role when it was issued)
    family: str | None = None  # user tokens: the sign-in they belong to
    auth_time: int | None = None  # when the user last proved password and TOTP

    @property
    def for_user(self) -> bool:
        return self.role is not None


class Flows:
    """What the browser grants need beyond authlib: storage, keys, and the way back to the
    event loop (their hooks run in a worker thread)."""

    def __init__(
        self, db: Database, loop: asyncio.AbstractEventLoop, keys: SigningKeys, issuer: str
    ) -> None:
        self.bridge = Bridge(loop)
        self.store = FlowStore(db)
        self.keys = keys
        self.issuer = issuer
        self.validator: HubTokenValidator | None = None

    def grant_user(self, user_id: uuid.UUID) -> GrantUser | None:
        user = self.bridge.run(self.store.active_user(user_id))
        if user is None:
            return None
        return GrantUser(user.id, user.pharmacy_id, user.role, user.username)

    async def live_user(self, token: AccessToken) -> User | None:
        """The user of a user access token if the account is active, still of the token's
        pharmacy, and the sign-in (token family) has not ended."""
        if not token.for_user or token.family is None:
            return None
        try:
            user_id, family = uuid.UUID(token.subject), uuid.UUID(token.family)
        except ValueError:
            return None
        user = await self.store.user_in_live_family(user_id, family)
        return user if user is not None and str(user.pharmacy_id) == token.pharmacy_id else None

    def access_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of one of our access tokens, verified, or None."""
        assert self.validator is not None
        try:
            claims = self.validator.authenticate_token(token)
            self.validator.validate_token(claims, [], None)
        except (OAuth2Error, ValueError, JoseError):
            return None
        return dict(claims)


class HubTokenValidator(JWTBearerTokenValidator):
    """RFC 9068 validation, stricter than authlib's: ``typ`` must be ``at+jwt``, only ES256."""

    def __init__(self, issuer: str, audience: str, keys: SigningKeys) -> None:
        super().__init__(issuer=issuer, resource_server=audience)
        self._keys = keys

    def get_jwks(self) -> KeySet:
        return self._keys.verification

    def authenticate_token(self, token_string: str) -> Any:
        _check_header(token_string, self.realm)
        return super().authenticate_token(token_string)


def _check_header(token_string: str, realm: str | None) -> None:
    try:
        segment = token_string.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        ok = (
            isinstance(header, dict)
            and header.get("alg") == ALGORITHM
            and str(header.get("typ", "")).lower() in ACCESS_TOKEN_TYPES
            and isinstance(header.get("kid"), str)
        )
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise InvalidTokenError(realm=realm)
