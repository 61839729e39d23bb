"""authlib's authorization server and resource protector, wired into aiohttp.

authlib has no aiohttp server integration (authlib#340), so the async handler reads the body,
wraps it in a synchronous :class:`AiohttpOAuth2Request` and runs authlib's synchronous core in
a worker thread; hooks that need the database hop back to the event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.resource_protector import ResourceProtector
from authlib.oauth2.rfc6750.errors import InsufficientScopeError
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet
from multidict import MultiDict

from .clients import MACHINE_AUTH_METHODS, SCOPES, USER_SCOPES, RegisteredClient
from .flows import AccessToken, Flows, GrantUser, HubTokenValidator
from .grants import (
    HubAuthorizationCodeGrant,
    HubIntrospectionEndpoint,
    HubOpenIDCode,
    HubRefreshTokenGrant,
    HubRevocationEndpoint,
    S256Only,
)
from .keys import ALGORITHM, SigningKeys


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

    #: set by the revocation endpoint when the token was found and its sign-in ended
    revoked = False

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


class HubTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 access tokens for the hub's own APIs, with the client's pharmacy binding."""

    def __init__(self, issuer: str, audience: str, keys: SigningKeys, ttl: int) -> None:
        super().__init__(
            issuer=issuer,
            alg=ALGORITHM,
            expires_generator=lambda *_: ttl,
            refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
        )
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
            claims: dict[str, Any] = {"pharmacy_id": str(user.pharmacy_id), "role": user.role}
            if user.family:
                claims["fam"] = str(user.family)
            if user.auth_time:  # only on tokens straight from a sign-in (step-up checks it)
                claims["auth_time"] = int(user.auth_time.timestamp())
            return claims
        return {"pharmacy_id": str(client.pharmacy_id)} if client.pharmacy_id else {}


class HubAuthorizationServer(AuthorizationServer):
    def __init__(
        self, query_client: Callable[[str], RegisteredClient | None], flows: Flows
    ) -> None:
        super().__init__(scopes_supported=sorted(SCOPES | USER_SCOPES))
        self._query_client = query_client
        self.flows = flows

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self._query_client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs; refresh tokens are kept (hashed) in the
        family of the sign-in. Issuance is audited by the endpoint."""
        refresh = token.get("refresh_token")
        user = request.user
        if refresh and isinstance(user, GrantUser) and user.family is not None:
            self.flows.bridge.run(self.flows.store.save_refresh(refresh, user.family))

    def create_oauth2_request(self, request: AiohttpOAuth2Request) -> AiohttpOAuth2Request:
        return request

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signal hook; the token endpoint audits outcomes itself."""

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        return status, body if isinstance(body, dict) else {}, dict(headers)


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
        flows: Flows,
    ) -> None:
        self.issuer = issuer
        self.keys = keys
        self.flows = flows
        self.server = HubAuthorizationServer(query_client, flows)
        self.server.register_grant(MachineClientCredentialsGrant)
        self.server.register_grant(HubAuthorizationCodeGrant, [S256Only(), HubOpenIDCode(flows)])
        self.server.register_grant(HubRefreshTokenGrant)
        self.server.register_endpoint(HubRevocationEndpoint)
        self.server.register_endpoint(HubIntrospectionEndpoint)
        self.server.register_token_generator(
            "default", HubTokenGenerator(issuer, audience, keys, access_token_ttl)
        )
        validator = HubTokenValidator(issuer, audience, keys)
        flows.validator = validator
        self.protector = ResourceProtector()
        self.protector.register_token_validator(validator)
        self.verified = VerifiedTokens()

    async def token_response(
        self, request: AiohttpOAuth2Request
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Run the token endpoint off the event loop (client lookup is blocking there)."""
        result: tuple[int, dict[str, Any], dict[str, str]] = await asyncio.to_thread(
            self.server.create_token_response, request
        )
        return result

    async def endpoint_response(
        self, name: str, request: AiohttpOAuth2Request
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Revocation or introspection, off the event loop."""
        result: tuple[int, dict[str, Any], dict[str, str]] = await asyncio.to_thread(
            self.server.create_endpoint_response, name, request
        )
        return result

    async def authorization_response(
        self, request: AiohttpOAuth2Request, user: GrantUser | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Validate an authorization request; with a signed-in ``user``, issue the code.

        An unknown client or redirect URI is answered here (400), never by redirecting;
        other errors go back to the client's redirect URI, as RFC 6749 §4.1.2.1 says.
        """
        return await asyncio.to_thread(self._authorize, request, user)

    def _authorize(
        self, request: AiohttpOAuth2Request, user: GrantUser | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            grant = self.server.get_consent_grant(request, end_user=user)
        except OAuth2Error as error:
            if error.redirect_uri:
                result: tuple[int, dict[str, Any], dict[str, str]] = (
                    self.server.handle_error_response(request, error)
                )
                return result
            return error.status_code, dict(error.get_body()), {}
        if user is None:
            return 401, {}, {}
        answer: tuple[int, dict[str, Any], dict[str, str]] = (
            self.server.create_authorization_response(request, grant_user=user, grant=grant)
        )
        return answer

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
            family=claims.get("fam"),
            auth_time=claims.get("auth_time"),
        )
        self.verified.put(token_string, token)
        return token

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata, also served as OpenID discovery."""
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "userinfo_endpoint": f"{base}/oauth/userinfo",
            "jwks_uri": f"{base}/oauth/jwks",
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", *MACHINE_AUTH_METHODS],
            "revocation_endpoint_auth_methods_supported": ["none", *MACHINE_AUTH_METHODS],
            "introspection_endpoint_auth_methods_supported": list(MACHINE_AUTH_METHODS),
            "scopes_supported": sorted(SCOPES | USER_SCOPES),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "access_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": ["sub", "preferred_username", "pharmacy_id", "role", "auth_time"],
            "service_documentation": f"{base}/api/v1/openapi.json",
        }


@dataclass(frozen=True, slots=True)
class _HeaderOnly:
    headers: Mapping[str, str]


__all__ = ["AiohttpOAuth2Request", "OAuth2Error", "OAuthService"]

#: the authorization server and token verification of this process
OAUTH: web.AppKey[OAuthService] = web.AppKey("oauth")
