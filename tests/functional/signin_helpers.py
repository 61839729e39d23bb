"""A pharmacist signing in through the browser flow, driven with a real HTTP client."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
from aiohttp import ClientResponse

from server import admin, users
from server.auth.credentials import SecretBox
from server.settings import SETTINGS
from tests.conftest import Hub
from tests.functional.verification_helpers import PASSWORD
from tests.support.signin import hidden_fields, s256

SCOPE = "openid rx:read rx:verify staff:manage consults"


@dataclass
class Console:
    """The browser client as registered with the CLI, and one user of it."""

    hub: Hub
    client_id: str
    redirect_uri: str
    username: str = "alice"
    seed: str = ""
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def authorize_params(self, **overrides: str | None) -> dict[str, str]:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": "state-123",
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256",
            **overrides,
        }
        return {k: v for k, v in params.items() if v is not None}

    async def form(self, response: ClientResponse) -> dict[str, str]:
        return hidden_fields(await response.text())

    async def sign_in(self, code: str | None = None, **overrides: str | None) -> ClientResponse:
        """Authorize → sign-in page → password → TOTP → back to the client (redirect followed
        to the hub's own URL, which answers 404: the code is in the final URL). Already
        signed in, the authorization request goes straight back to the client."""
        client = self.hub.client
        page = await client.get("/oauth/authorize", params=self.authorize_params(**overrides))
        if str(page.url).startswith(self.redirect_uri):
            return page
        assert page.url.path == "/login", await page.text()
        fields = await self.form(page)
        mfa = await client.post(
            "/login", data={**fields, "username": self.username, "password": PASSWORD}
        )
        assert mfa.url.path == "/login/mfa", await mfa.text()
        fields = await self.form(mfa)
        return await client.post(
            "/login/mfa", data={**fields, "code": code or pyotp.TOTP(self.seed).now()}
        )

    def code_of(self, response: ClientResponse) -> str:
        query = parse_qs(urlparse(str(response.url)).query)
        assert query.get("state") == ["state-123"], response.url
        return query["code"][0]

    async def exchange(self, code: str, **overrides: str | None) -> tuple[int, dict[str, Any]]:
        data: dict[str, str | None] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
            **overrides,
        }
        response = await self.hub.client.post(
            "/oauth/token", data={k: v for k, v in data.items() if v is not None}
        )
        return response.status, dict(await response.json())

    async def refresh(self, refresh_token: str) -> tuple[int, dict[str, Any]]:
        response = await self.hub.client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.client_id,
            },
        )
        return response.status, dict(await response.json())

    async def tokens(self) -> dict[str, Any]:
        status, tokens = await self.exchange(self.code_of(await self.sign_in()))
        assert status == 200, tokens
        return tokens


async def console(hub: Hub, role: str = "pharmacist", username: str = "alice") -> Console:
    """The test pharmacy, a browser client registered as the CLI does, and a user."""
    await hub.pharmacy()
    redirect_uri = str(hub.client.make_url("/console/callback"))
    registered = await admin.add_client(
        hub.db, name="Console", scope=SCOPE, pharmacy_ncpdpid=None, redirect_uris=[redirect_uri]
    )
    result = Console(hub, registered.client_id, redirect_uri, username)
    result.seed = await enrol(hub, username, role)
    return result


async def enrol(hub: Hub, username: str, role: str = "pharmacist") -> str:
    """A user created as ``telepharm user add`` does; the seed from the enrolment URI."""
    box = SecretBox.load(hub.client.app[SETTINGS].keys_dir)
    enrolment = await users.add_user(
        hub.db, box, pharmacy="1234567", username=username, role=role, password=PASSWORD
    )
    return parse_qs(urlparse(enrolment.uri).query)["secret"][0]
