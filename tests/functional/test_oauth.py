"""The OAuth token endpoint, JWKS and metadata, driven over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from server import audit
from server.app import create_app
from server.audit.models import AuditEvent
from server.auth.failures import MAX_GROUPS, FailureTally
from server.auth.keys import rotate
from server.db import Database
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
    await hub.client.close()  # failures are audited as summaries, at the latest when it stops
    async with hub.db.sessions() as session:
        found = await session.execute(
            select(AuditEvent.actor, AuditEvent.outcome).where(AuditEvent.action == "oauth.token")
        )
        entries = sorted((actor, outcome) for actor, outcome in found)
    claimed = sorted([credentials.client_id, "nobody", "unknown"])
    assert entries == [(f"client:{c}", "failure") for c in claimed]


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


async def test_failed_token_requests_are_summarised_not_audited_one_by_one(hub: Hub) -> None:
    credentials = await hub.machine_client()
    wrong = {"Authorization": basic(type(credentials)(credentials.client_id, "wrong"))}
    for _ in range(20):
        response = await hub.client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=wrong
        )
        assert response.status == 401
    for _ in range(5):  # revoking tokens the hub does not know: answered, but nothing happened
        void = {"token": "no-such-token", "client_id": "telepharm-console"}
        assert (await hub.client.post("/oauth/revoke", data=void)).status == 200
    await hub.token(credentials)
    assert await hub.audit_outcomes("oauth.token") == ["success"]  # nothing queued for the lock
    assert await hub.audit_outcomes("oauth.revoke") == []
    await hub.client.close()  # the hub stops: what it counted is summarised
    async with hub.db.sessions() as session:
        summary = (
            await session.execute(
                select(AuditEvent.actor, AuditEvent.ip, AuditEvent.detail).where(
                    AuditEvent.action == "oauth.token", AuditEvent.outcome == "failure"
                )
            )
        ).one()
    assert summary.actor == f"client:{credentials.client_id}"
    assert summary.ip == "127.0.0.1"
    assert summary.detail["count"] == 20
    assert summary.detail["error"] == "invalid_client"
    assert summary.detail["grant_type"] == "client_credentials"
    assert summary.detail["first"] <= summary.detail["last"]
    async with hub.db.sessions() as session:
        void = (
            await session.execute(
                select(AuditEvent.outcome, AuditEvent.detail).where(
                    AuditEvent.action == "oauth.revoke"
                )
            )
        ).one()
    assert (void.outcome, void.detail["revoked"], void.detail["count"]) == ("success", "nothing", 5)
    assert (await audit.verify(hub.db)).intact


async def test_failure_summaries_are_bounded_however_many_clients_are_claimed(
    db: Database,
) -> None:
    tally = FailureTally()
    event = audit.Event("oauth.token", "access_token", outcome="failure", detail={"error": "x"})
    for n in range(MAX_GROUPS + 10):
        tally.note(audit.Actor("client", f"made-up-{n}", None, "192.0.2.1"), event)
    await tally.flush(db)
    async with db.sessions() as session:
        rows = (await session.execute(select(AuditEvent.actor, AuditEvent.detail))).all()
    assert len(rows) == MAX_GROUPS + 1
    assert [d["count"] for a, d in rows if a == "client:*"] == [10]
    assert (await audit.verify(db)).intact
