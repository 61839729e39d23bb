"""authlib's authorization server and resource protector, wired into aiohttp.

authlib has no aiohttp server integration (authlib#340), so the async handler reads the body,
wraps it in a synchronous :class:`AiohttpOAuth2Request` and runs authlib's synchronous core in
a worker thread; hooks that need the database hop back to the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.resource_protector import ResourceProtector
from authlib.oauth2.rfc6750.errors import InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from joserfc.jwk import KeySet
from multidict import MultiDict

from .clients import MACHINE_AUTH_METHODS, SCOPES, RegisteredClient
from .keys import ALGORITHM, SigningKeys

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


class FormPayload(OAuth2Payload):
    """Query and form parameters; the form wins, and duplicates stay visible to authlib."""

    def __init__(self, query: MultiDict[str], form: MultiDict[str]) -> None:
        self._data = {**query, **form}
        self._datalist = {k: query.getall(k, []) + form.getall(k, []) for k in self._data}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class AiohttpOAuth2Request(OAuth2Request):
    """A synchronous view of an aiohttp request whose body has already been read."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: MultiDict[str],
        form: MultiDict[str],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args, self._form = query, form
        self.payload = FormPayload(query, form)

    @property
    def args(self) -> MultiDict[str]:
        return self._args

    @property
    def form(self) -> MultiDict[str]:
        return self._form


class MachineClientCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(MACHINE_AUTH_METHODS)


@dataclass(frozen=True, slots=True)
class GrantUser:
    """The signed-in user a token is issued for (authlib reads ``get_user_id`` for ``sub``)."""

    id: uuid.UUID
    pharmacy_id: uuid.UUID
    role: str
    username: str

    def get_user_id(self) -> str:
        return str(self.id)


class HubTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 access tokens for the hub's own APIs, with the client's pharmacy binding."""

    def __init__(self, issuer: str, audience: str, keys: SigningKeys, ttl: int) -> None:
        super().__init__(issuer=issuer, alg=ALGORITHM, expires_generator=lambda *_: ttl)
        self._audience = audience
        self._keys = keys

    def get_jwks(self) -> KeySet:
        return self._keys.active

    def get_audiences(self, client: RegisteredClient, user: Any, scope: str) -> str:
        return self._audience

    def get_extra_claims(
        self, client: RegisteredClient, grant_type: str, user: GrantUser | None, scope: str
    ) -> dict[str, Any]:
        if user is not None:
            return {"pharmacy_id": str(user.pharmacy_id), "role": user.role}
        return {"pharmacy_id": str(client.pharmacy_id)} if client.pharmacy_id else {}


class HubAuthorizationServer(AuthorizationServer):
    def __init__(self, query_client: Callable[[str], RegisteredClient | None]) -> None:
        super().__init__(scopes_supported=sorted(SCOPES))
        self._query_client = query_client

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self._query_client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """JWT access tokens are self-contained; issuance is audited by the endpoint."""

    def create_oauth2_request(self, request: AiohttpOAuth2Request) -> AiohttpOAuth2Request:
        return request

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signal hook; the token endpoint audits outcomes itself."""

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        return status, body if isinstance(body, dict) else {}, dict(headers)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a handler learns about the caller from a verified access token."""

    client_id: str
    subject: str  # the user's ID for user tokens, the client's otherwise
    scopes: frozenset[str]
    pharmacy_id: str | None
    expires_at: int
    role: str | None = None  # set on user tokens only (the role when it was issued)

    @property
    def for_user(self) -> bool:
        return self.role is not None


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


class VerifiedTokens:
    """Access tokens that passed full verification, kept (bounded) until they expire.

    A client reuses its token for many messages: it pays for one ECDSA verification and one
    claims check, later requests only for an expiry and scope check.
    """

    def __init__(self, size: int = 4096) -> None:
        self._tokens: OrderedDict[str, AccessToken] = OrderedDict()
        self._size = size

    def get(self, token_string: str) -> AccessToken | None:
        token = self._tokens.get(token_string)
        if token is None:
            return None
        if token.expires_at <= time.time():
            del self._tokens[token_string]
            return None
        self._tokens.move_to_end(token_string)
        return token

    def put(self, token_string: str, token: AccessToken) -> None:
        self._tokens[token_string] = token
        if len(self._tokens) > self._size:
            self._tokens.popitem(last=False)


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


class OAuthService:
    """The hub's OAuth authorization server and resource protector for one process."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: SigningKeys,
        access_token_ttl: int,
        query_client: Callable[[str], RegisteredClient | None],
    ) -> None:
        self.issuer = issuer
        self.keys = keys
        self.server = HubAuthorizationServer(query_client)
        self.server.register_grant(MachineClientCredentialsGrant)
        self.server.register_token_generator(
            "default", HubTokenGenerator(issuer, audience, keys, access_token_ttl)
        )
        self.protector = ResourceProtector()
        self.protector.register_token_validator(HubTokenValidator(issuer, audience, keys))
        self.verified = VerifiedTokens()

    async def token_response(
        self, request: AiohttpOAuth2Request
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Run the token endpoint off the event loop (client lookup is blocking there)."""
        result: tuple[int, dict[str, Any], dict[str, str]] = await asyncio.to_thread(
            self.server.create_token_response, request
        )
        return result

    def verify(self, authorization: str | None, scope: str) -> AccessToken:
        """Check an ``Authorization`` header; raises authlib's OAuth2Error subclasses."""
        scheme, _, token_string = (authorization or "").partition(" ")
        known = self.verified.get(token_string) if scheme.lower() == "bearer" else None
        if known is not None:
            if scope not in known.scopes:
                raise InsufficientScopeError()
            return known
        headers = {"Authorization": authorization} if authorization else {}
        claims = self.protector.validate_request([scope], _HeaderOnly(headers))
        token = AccessToken(
            client_id=str(claims["client_id"]),
            subject=str(claims["sub"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            pharmacy_id=claims.get("pharmacy_id"),
            expires_at=int(claims["exp"]),
            role=claims.get("role"),
        )
        self.verified.put(token_string, token)
        return token

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata (also served as OpenID discovery)."""
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{self.issuer}/oauth/token",
            "jwks_uri": f"{self.issuer}/oauth/jwks",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": list(MACHINE_AUTH_METHODS),
            "scopes_supported": sorted(SCOPES),
            "response_types_supported": [],
            "access_token_signing_alg_values_supported": [ALGORITHM],
            "service_documentation": f"{self.issuer}/api/v1/openapi.json",
        }


@dataclass(frozen=True, slots=True)
class _HeaderOnly:
    headers: Mapping[str, str]


__all__ = ["AccessToken", "AiohttpOAuth2Request", "GrantUser", "OAuth2Error", "OAuthService"]
