"""The browser-facing OAuth 2.0 / OpenID Connect grants and endpoints, on authlib.

Stricter than authlib's defaults (../shared/reference/security.md §3):
- PKCE is required of every client and only ``S256`` is accepted (no ``plain``, no default);
- a code is consumed when it is looked up, so of two exchanges one wins; a code presented
  again revokes the tokens issued from it;
- refresh tokens rotate on every use; a used one presented again revokes the whole family; a
  refresh that fails validation (another client, a wider scope) does not use the token up;
- ID tokens are signed with the hub's key, ``typ`` JWT and audience the client, so they are
  never accepted where an access token (``typ`` at+jwt, audience the hub) is expected.

These hooks run in authlib's worker thread and reach the database through the
:class:`~server.auth.store.Bridge`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode

from ..db.models import utcnow
from .clients import INTROSPECT, MACHINE_AUTH_METHODS, RegisteredClient
from .flows import Flows, GrantUser
from .keys import ALGORITHM
from .store import IssuedCode, LiveRefreshToken

ID_TOKEN_TTL = 300
PUBLIC = "none"


def _flows(grant: Any) -> Flows:
    """The flows of the authorization server ``grant`` is registered with (authlib sets
    ``grant.server``; ``oauth.HubAuthorizationServer`` carries them)."""
    flows: Flows = grant.server.flows
    return flows


class S256Only(CodeChallenge):
    """PKCE for every client, ``S256`` only."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class HubAuthorizationCodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [PUBLIC, *MACHINE_AUTH_METHODS]
    AUTHORIZATION_CODE_LENGTH = 43

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        user: GrantUser = request.user
        data = request.payload.data
        flows = _flows(self)
        flows.bridge.run(
            flows.store.save_code(
                code,
                client_id=request.client.get_client_id(),
                user_id=user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                auth_time=user.auth_time or utcnow(),
            )
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> IssuedCode | None:
        flows = _flows(self)
        return flows.bridge.run(flows.store.use_code(code, client.get_client_id()))

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing to do: the code was consumed when it was looked up."""

    def authenticate_user(self, authorization_code: IssuedCode) -> GrantUser | None:
        flows = _flows(self)
        user = flows.grant_user(authorization_code.user_id)
        if user is None:
            return None
        family = flows.bridge.run(
            flows.store.start_family(
                user.id,
                authorization_code.client_id,
                authorization_code.scope,
                authorization_code.code_hash,
            )
        )
        return user.in_family(family, authorization_code.auth_time)


class HubRefreshTokenGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [PUBLIC, *MACHINE_AUTH_METHODS]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> LiveRefreshToken | None:
        """Look the token up only: authlib checks the client and the scope after this, and a
        request that fails them must not use the token up."""
        flows = _flows(self)
        return flows.bridge.run(flows.store.find_refresh(refresh_token))

    def authenticate_user(self, refresh_token: LiveRefreshToken) -> GrantUser | None:
        """Called once the request is valid, before any token is made: the refresh token is
        used up here, so of two concurrent uses one gets tokens."""
        flows = _flows(self)
        if not flows.bridge.run(flows.store.use_refresh(refresh_token)):
            raise InvalidGrantError("The refresh token was already used.")
        user = flows.grant_user(refresh_token.user_id)
        return user.in_family(refresh_token.family_id) if user else None

    def revoke_old_credential(self, refresh_token: LiveRefreshToken) -> None:
        """Nothing to do: the token was used up in :meth:`authenticate_user`."""


class HubOpenIDCode(OpenIDCode):
    """ID tokens for the authorization-code flow (``openid`` scope)."""

    def __init__(self, flows: Flows) -> None:
        super().__init__(require_nonce=False)
        self._flows = flows

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        flows = self._flows
        return flows.bridge.run(flows.store.nonce_used(nonce, request.payload.client_id))

    def resolve_client_private_key(self, client: RegisteredClient) -> Any:
        return self._flows.keys.active.keys[0]

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return ALGORITHM

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        kid = self._flows.keys.active.keys[0].kid
        return {"alg": ALGORITHM, "typ": "JWT", "kid": str(kid)}

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self._flows.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + ID_TOKEN_TTL,
        }

    def generate_user_info(self, user: GrantUser, scope: str) -> UserInfo:
        return user_info(user)


def user_info(user: GrantUser) -> UserInfo:
    return UserInfo(
        sub=str(user.id),
        preferred_username=user.username,
        pharmacy_id=str(user.pharmacy_id),
        role=user.role,
    )


class _PresentedToken:
    """A presented token, resolved: a user's (with its family) or a machine client's access
    token (claims only), or a refresh token (family only)."""

    def __init__(self, family: Any | None, claims: dict[str, Any] | None) -> None:
        self.family: Any = family  # a TokenFamily row, or None for a machine client's token
        self.claims = claims

    @property
    def client_id(self) -> str:
        if self.family is not None:
            return str(self.family.client_id)
        assert self.claims is not None
        return str(self.claims["client_id"])

    def check_client(self, client: RegisteredClient) -> bool:
        return self.client_id == client.get_client_id()

    def is_expired(self) -> bool:
        expires = self.claims["exp"] if self.claims else self.family.expires_at.timestamp()
        return bool(expires <= time.time())

    def is_revoked(self) -> bool:
        return self.family is not None and self.family.revoked_at is not None


def _find(flows: Flows, token: str, hint: str | None) -> _PresentedToken | None:
    if hint != "refresh_token":
        claims = flows.access_claims(token)
        if claims is not None:
            if "fam" not in claims:  # a machine client's token: nothing stored to look up
                return _PresentedToken(None, claims)
            family = flows.bridge.run(flows.store.family_by_id(claims["fam"]))
            return _PresentedToken(family, claims) if family else None
    family = flows.bridge.run(flows.store.family_of_refresh(token))
    return _PresentedToken(family, None) if family else None


class HubRevocationEndpoint(RevocationEndpoint):
    """RFC 7009: revoking any token of a sign-in ends the sign-in (its family)."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [PUBLIC, *MACHINE_AUTH_METHODS]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find(_flows(self), token_string, token_type_hint)

    def revoke_token(self, token: _PresentedToken, request: OAuth2Request) -> None:
        """Ends the sign-in; a machine client's access token just expires (5 minutes)."""
        request.revoked = True
        if token.family is not None:
            flows = _flows(self)
            flows.bridge.run(flows.store.revoke_family(token.family.id, "revoked"))


class HubIntrospectionEndpoint(IntrospectionEndpoint):
    """RFC 7662 for confidential clients: their own tokens, or any token with the registered
    scope ``token:introspect`` (resource servers); ``active`` false for anything expired,
    revoked, unknown, not the hub's, or not the caller's to see (RFC 7662 §2.2: nothing
    tells which)."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(MACHINE_AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find(_flows(self), token_string, token_type_hint)

    def check_permission(
        self, token: _PresentedToken, client: RegisteredClient, request: OAuth2Request
    ) -> bool:
        if client.secret_hash is None:
            return False
        return INTROSPECT in client.scopes or token.check_client(client)

    def introspect_token(self, token: _PresentedToken) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "active": True,
            "client_id": token.client_id,
            "iss": _flows(self).issuer,
        }
        if token.claims:
            claims = token.claims
            payload.update(sub=claims["sub"], scope=claims.get("scope", ""), exp=claims["exp"])
            payload["iat"] = claims["iat"]
            payload["token_type"] = "access_token"  # noqa: S105
        else:
            family = token.family
            payload.update(sub=str(family.user_id), scope=family.scope)
            payload["exp"] = int(family.expires_at.timestamp())
            payload["token_type"] = "refresh_token"  # noqa: S105
        return payload


__all__ = [
    "HubAuthorizationCodeGrant",
    "HubIntrospectionEndpoint",
    "HubOpenIDCode",
    "HubRefreshTokenGrant",
    "HubRevocationEndpoint",
    "S256Only",
    "user_info",
]
