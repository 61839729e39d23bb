"""The OAuth token endpoint, JWKS and metadata, driven over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from server.app import create_app
from server.auth.keys import rotate
from server.db.models import AuditEvent
from server.settings import Settings
from tests.conftest import ISSUER, Hub, basic
from tests.support.tokens import decode_unverified


async def test_client_credentials_basic_issues_rfc9068_token(hub: Hub) -> None:
    await hub.pharmacy()
    credentials = await hub.machine_client("rx:read", pharmacy="1234567")
    response = await hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(credentials)},
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "rx:read"
    header, claims = decode_unverified(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == credentials.client_id
    assert claims["sub"] == credentials.client_id
    assert claims["pharmacy_id"]
    jwks = await (await hub.client.get("/oauth/jwks")).json()
    assert [k["kid"] for k in jwks["keys"]] == [header["kid"]]
    assert all("d" not in k for k in jwks["keys"])  # never the private part
    verified = jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert verified.claims["jti"]


async def test_client_secret_post(hub: Hub) -> None:
    credentials = await hub.machine_client()
    response = await hub.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "scope": "script:send",
        },
    )
    assert response.status == 200, await response.text()


async def test_wrong_secret_unknown_client_and_no_auth_are_401(hub: Hub) -> None:
    credentials = await hub.machine_client()
    bad = [
        {"Authorization": basic(type(credentials)(credentials.client_id, "wrong"))},
        {"Authorization": basic(type(credentials)("nobody", "whatever"))},
        {},
    ]
    for headers in bad:
        response = await hub.client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
        )
        assert response.status in (400, 401)
        assert (await response.json())["error"] == "invalid_client"
    async with hub.db.sessions() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.action == "oauth.token")
            )
        )
    assert outcomes == ["failure"] * 3


async def test_scope_escalation_is_refused_not_filtered(hub: Hub) -> None:
    credentials = await hub.machine_client("script:send")
    response = await hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "script:send rx:read"},
        headers={"Authorization": basic(credentials)},
    )
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_scope"


async def test_unsupported_grant_and_wrong_content_type(hub: Hub) -> None:
    credentials = await hub.machine_client()
    response = await hub.client.post(
        "/oauth/token",
        data={"grant_type": "password"},
        headers={"Authorization": basic(credentials)},
    )
    assert (await response.json())["error"] == "unsupported_grant_type"
    response = await hub.client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        headers={"Authorization": basic(credentials)},
    )
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_request"


async def test_token_body_over_64_kib_is_413(hub: Hub) -> None:
    response = await hub.client.post(
        "/oauth/token",
        data="grant_type=client_credentials&pad=" + "a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413
    assert response.content_type == "application/problem+json"


async def test_metadata_and_discovery(hub: Hub) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        meta = await (await hub.client.get(path)).json()
        assert meta["issuer"] == ISSUER
        assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
        assert meta["jwks_uri"] == f"{ISSUER}/oauth/jwks"
        assert "client_credentials" in meta["grant_types_supported"]


async def test_health_and_readiness(hub: Hub) -> None:
    assert (await hub.client.get("/healthz")).status == 200
    ready = await hub.client.get("/readyz")
    assert ready.status == 200
    checks = (await ready.json())["checks"]
    assert (checks["database"], checks["broker"], checks["sweep"]) == ("ok", "ok", "ok")


async def test_discovery_advertises_the_browser_flow(hub: Hub) -> None:
    meta = await (await hub.client.get("/.well-known/openid-configuration")).json()
    assert meta["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    for endpoint in ("revocation", "introspection", "userinfo"):
        assert meta[f"{endpoint}_endpoint"].startswith(ISSUER)


async def test_key_rotation_keeps_old_tokens_valid(
    hub: Hub, settings: Settings, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    await hub.pharmacy()
    reader = await hub.machine_client("rx:read", pharmacy="1234567")
    old_token = await hub.token(reader, scope="rx:read")
    old_kid = decode_unverified(old_token)[0]["kid"]
    new_kid, kept = rotate(settings.keys_dir)
    assert kept == [old_kid]

    restarted = await aiohttp_client(create_app(settings))
    jwks = await (await restarted.get("/oauth/jwks")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]
    assert all("d" not in k for k in jwks["keys"])  # public parts only
    listing = await restarted.get(
        "/api/v1/prescriptions", headers={"Authorization": f"Bearer {old_token}"}
    )
    assert listing.status == 200
    response = await restarted.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "rx:read"},
        headers={"Authorization": basic(reader)},
    )
    new_token = (await response.json())["access_token"]
    assert decode_unverified(new_token)[0]["kid"] == new_kid
