"""OAuth client records: registration (CLI) and the authlib ``ClientMixin`` view of a row.

Client secrets are 256-bit random values, so a single SHA-256 is an adequate stored verifier
(a slow password hash buys nothing for a secret nobody can guess, and would slow every token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError

from .models import OAuthClient

INTROSPECT = "token:introspect"
#: scopes a client may be registered with, and what they allow
SCOPES = {
    "script:send": "send NCPDP SCRIPT messages to pharmacies on the hub",
    "rx:read": "read the prescriptions of the pharmacy the client is bound to",
    INTROSPECT: "introspect any token the hub issued, not only the client's own (resource servers)",
}
MACHINE_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: scopes of tokens issued to signed-in users (through a browser client)
USER_SCOPES = {
    "openid": "an ID token and the userinfo endpoint",
    "rx:read": "read the prescriptions of the user's pharmacy",
    "rx:verify": "verification actions (claim, approve, reject, clarify, notes), by role",
    "staff:manage": "pharmacy admins: roles and controlled-substance permissions of staff",
    "consults": "pharmacists: video consults with patients",
}
BROWSER_GRANTS = "authorization_code refresh_token"


class ClientRegistrationError(ValueError):
    """The registration request is not acceptable."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scope(scope: str) -> frozenset[str]:
    return frozenset(scope.split())


@dataclass(frozen=True, slots=True)
class RegisteredClient(ClientMixin):
    """An immutable snapshot of a client row, as authlib's grants expect to see it."""

    client_id: str
    secret_hash: str | None
    scopes: frozenset[str]
    grant_types: frozenset[str]
    auth_methods: frozenset[str]
    pharmacy_id: uuid.UUID | None
    redirect_uris: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: OAuthClient) -> RegisteredClient:
        return cls(
            client_id=row.client_id,
            secret_hash=row.secret_hash,
            scopes=parse_scope(row.scope),
            grant_types=frozenset(row.grant_types.split()),
            auth_methods=frozenset(row.token_endpoint_auth_methods.split()),
            pharmacy_id=row.pharmacy_id,
            redirect_uris=tuple(row.redirect_uris.split()),
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """Everything registered when nothing is asked; a refusal, never a silent filter."""
        if not scope:
            return " ".join(sorted(self.scopes))
        wanted = parse_scope(scope)
        if not wanted <= self.scopes:
            raise InvalidScopeError(description="The client may not request this scope.")
        return " ".join(sorted(wanted))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match with a registered URI: no prefix, port or case leniency."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint in ("token", "revocation", "introspection") and method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


#: the hub's own web console (webclient/): a public client whose one redirect URI is the
#: console's page, so it needs no registration and follows ``TELEPHARM_ISSUER``
CONSOLE_CLIENT_ID = "telepharm-console"


def console_client(issuer: str) -> RegisteredClient:
    return RegisteredClient(
        client_id=CONSOLE_CLIENT_ID,
        secret_hash=None,
        scopes=frozenset(USER_SCOPES),
        grant_types=frozenset(BROWSER_GRANTS.split()),
        auth_methods=frozenset({"none"}),
        pharmacy_id=None,
        redirect_uris=(f"{issuer}/",),
    )


def new_client_id() -> str:
    """A random client id an operator can pass on the command line: never one that starts
    with "-", which a command-line parser takes for an option."""
    while True:
        client_id = secrets.token_urlsafe(16)
        if not client_id.startswith("-"):
            return client_id


def new_machine_client(
    name: str, scope: str, pharmacy_id: uuid.UUID | None
) -> tuple[OAuthClient, str]:
    """A confidential client-credentials client; returns the row and the one-time secret."""
    name, scopes = _checked(name, scope, SCOPES, "--scope must be one or more of")
    if "rx:read" in scopes and pharmacy_id is None:
        raise ClientRegistrationError("a client with rx:read must be bound with --pharmacy")
    secret = secrets.token_urlsafe(32)
    row = OAuthClient(
        client_id=new_client_id(),
        name=name,
        secret_hash=hash_secret(secret),
        scope=" ".join(sorted(scopes)),
        grant_types="client_credentials",
        token_endpoint_auth_methods=" ".join(MACHINE_AUTH_METHODS),
        redirect_uris="",
        pharmacy_id=pharmacy_id,
    )
    return row, secret


def new_browser_client(name: str, scope: str, redirect_uris: list[str]) -> OAuthClient:
    """A public client (no secret; PKCE protects its codes) for a browser app that signs
    users in with the authorization-code flow."""
    name, scopes = _checked(name, scope, USER_SCOPES, "--scope of a browser client must be among")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    return OAuthClient(
        client_id=new_client_id(),
        name=name,
        secret_hash=None,
        scope=" ".join(sorted(scopes)),
        grant_types=BROWSER_GRANTS,
        token_endpoint_auth_methods="none",  # noqa: S106  (an auth method, not a secret)
        redirect_uris=" ".join(redirect_uris),
        pharmacy_id=None,
    )


def _checked(
    name: str, scope: str, allowed: dict[str, str], wording: str
) -> tuple[str, frozenset[str]]:
    """The stripped name and the scopes of a registration, or a one-line refusal."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientRegistrationError("--name must be 1 to 200 characters")
    scopes = parse_scope(scope)
    if not scopes or scopes - allowed.keys():
        raise ClientRegistrationError(f"{wording}: {', '.join(sorted(allowed))}")
    return name, scopes


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not local)
        or not parts.hostname
        or parts.fragment
        or parts.username
        or parts.password
        or " " in uri
    ):
        raise ClientRegistrationError(
            f"--redirect-uri {uri!r} must be an absolute https URL (http only on localhost) "
            "without user info or fragment"
        )
