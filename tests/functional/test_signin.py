"""Sign-in through the authorization-code flow with PKCE, password and TOTP, and its attacks."""

from __future__ import annotations

import asyncio
import datetime as dt

import pyotp
import pytest
from sqlalchemy import select, update

from server import admin, audit, users
from server.audit.models import AuditEvent
from server.auth.models import WebSession
from tests.conftest import Hub, basic
from tests.functional.signin_helpers import SCOPE, Console, console
from tests.functional.verification_helpers import PASSWORD, bearer
from tests.support.tokens import decode_unverified


async def api_status(hub: Hub, token: str) -> int:
    return (await hub.client.get("/api/v1/prescriptions", headers=bearer(token))).status


async def test_pharmacist_signs_in_and_uses_the_api(hub: Hub) -> None:
    app = await console(hub)
    landing = await app.sign_in()
    assert landing.url.path == "/console/callback"  # the hub redirected to the client
    status, tokens = await app.exchange(app.code_of(landing))
    assert status == 200, tokens
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["expires_in"] == 300
    assert set(tokens["scope"].split()) == {
        "openid",
        "rx:read",
        "rx:verify",
        "staff:manage",
        "consults",
    }
    assert await api_status(hub, tokens["access_token"]) == 200

    header, claims = decode_unverified(tokens["id_token"])
    assert header["typ"] == "JWT"
    assert claims["aud"] == [app.client_id] or claims["aud"] == app.client_id
    assert claims["preferred_username"] == "alice"
    assert claims["role"] == "pharmacist"
    info = await hub.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status == 200
    assert (await info.json())["preferred_username"] == "alice"

    async with hub.db.sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action + ":" + AuditEvent.outcome).order_by(AuditEvent.seq)
            )
        )
    assert "login:success" in actions
    assert "oauth.authorize:success" in actions
    assert "oauth.token:success" in actions
    assert (await audit.verify(hub.db)).intact


async def test_id_token_is_not_an_access_token(hub: Hub) -> None:
    app = await console(hub)
    tokens = await app.tokens()
    assert await api_status(hub, tokens["id_token"]) == 401


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": None, "code_challenge_method": None},
    ],
)
async def test_pkce_s256_is_required(hub: Hub, overrides: dict[str, str | None]) -> None:
    app = await console(hub)
    response = await hub.client.get(
        "/oauth/authorize", params=app.authorize_params(**overrides), allow_redirects=False
    )
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(app.redirect_uri)
    assert "error=invalid_request" in location
    assert "code=" not in location


async def test_wrong_or_missing_verifier_gets_no_token(hub: Hub) -> None:
    app = await console(hub)
    code = app.code_of(await app.sign_in())
    status, body = await app.exchange(code, code_verifier="x" * 50)
    assert (status, body["error"]) == (400, "invalid_grant")
    code = app.code_of(await app.sign_in())
    status, body = await app.exchange(code, code_verifier=None)
    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "variant",
    [
        "{uri}/",
        "{uri}#fragment",
        "{uri}?extra=1",
        "http://evil@{hostport}/console/callback",
        "http://127.0.0.1:1/console/callback",
        "https://attacker.example/console/callback",
    ],
)
async def test_redirect_uri_must_match_exactly(hub: Hub, variant: str) -> None:
    app = await console(hub)
    hostport = app.redirect_uri.split("//", 1)[1].split("/", 1)[0]
    uri = variant.format(uri=app.redirect_uri, hostport=hostport)
    response = await hub.client.get(
        "/oauth/authorize", params=app.authorize_params(redirect_uri=uri), allow_redirects=False
    )
    assert response.status == 400  # answered on the hub, never redirected to the variant
    assert "Location" not in response.headers


async def test_code_replay_revokes_what_the_code_bought(hub: Hub) -> None:
    app = await console(hub)
    code = app.code_of(await app.sign_in())
    status, tokens = await app.exchange(code)
    assert status == 200
    status, body = await app.exchange(code)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await api_status(hub, tokens["access_token"]) == 401
    status, body = await app.refresh(tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_refresh_rotates_and_reuse_revokes_the_family(hub: Hub) -> None:
    app = await console(hub)
    first = await app.tokens()
    status, second = await app.refresh(first["refresh_token"])
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert await api_status(hub, second["access_token"]) == 200
    status, body = await app.refresh(first["refresh_token"])  # stolen and replayed
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await api_status(hub, second["access_token"]) == 401
    status, body = await app.refresh(second["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_revocation_and_introspection(hub: Hub) -> None:
    app = await console(hub)
    tokens = await app.tokens()
    resource_server = await hub.machine_client("rx:read token:introspect", pharmacy="1234567")

    async def introspect(token: str) -> dict[str, object]:
        response = await hub.client.post(
            "/oauth/introspect",
            data={"token": token},
            headers={"Authorization": basic(resource_server)},
        )
        assert response.status == 200
        return dict(await response.json())

    active = await introspect(tokens["access_token"])
    assert active["active"] is True
    assert active["client_id"] == app.client_id
    assert (await introspect(tokens["refresh_token"]))["token_type"] == "refresh_token"
    machine = await hub.token(resource_server, scope="rx:read")
    described = await introspect(machine)
    assert (described["active"], described["client_id"]) == (True, resource_server.client_id)
    assert await introspect("not-a-token") == {"active": False}
    public = await hub.client.post(
        "/oauth/introspect", data={"token": tokens["access_token"], "client_id": app.client_id}
    )
    assert public.status == 401  # only confidential clients introspect

    unknown = await hub.client.post(
        "/oauth/revoke", data={"token": "no-such-token", "client_id": app.client_id}
    )
    assert unknown.status == 200
    revoked = await hub.client.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": app.client_id}
    )
    assert revoked.status == 200
    assert await api_status(hub, tokens["access_token"]) == 401
    assert await introspect(tokens["access_token"]) == {"active": False}
    assert await introspect(tokens["refresh_token"]) == {"active": False}


async def test_a_client_introspects_its_own_tokens_only_without_the_scope(hub: Hub) -> None:
    app = await console(hub)
    tokens = await app.tokens()
    pharmacy_system = await hub.machine_client("rx:read", pharmacy="1234567")
    sender = await hub.machine_client("script:send")

    async def introspect(caller: admin.ClientCredentials, token: str) -> object:
        response = await hub.client.post(
            "/oauth/introspect", data={"token": token}, headers={"Authorization": basic(caller)}
        )
        assert response.status == 200
        return (await response.json())["active"]

    own = await hub.token(pharmacy_system, scope="rx:read")
    assert await introspect(pharmacy_system, own) is True
    for token in (tokens["access_token"], tokens["refresh_token"], await hub.sender_token()):
        assert await introspect(pharmacy_system, token) is False  # not whose it is, either
    assert await introspect(sender, own) is False


async def test_a_failed_refresh_leaves_the_refresh_token_usable(hub: Hub) -> None:
    app = await console(hub)
    tokens = await app.tokens()
    other = await admin.add_client(
        hub.db, name="Other", scope=SCOPE, pharmacy_ncpdpid=None, redirect_uris=[app.redirect_uri]
    )
    failing = [
        {"client_id": other.client_id},  # another client's id
        {"client_id": app.client_id, "scope": SCOPE + " script:send"},  # a wider scope
    ]
    for extra in failing:
        response = await hub.client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **extra},
        )
        assert response.status in (400, 401), extra
    assert await api_status(hub, tokens["access_token"]) == 200  # the sign-in goes on
    status, renewed = await app.refresh(tokens["refresh_token"])
    assert status == 200, renewed
    assert await api_status(hub, renewed["access_token"]) == 200


async def test_of_two_concurrent_refreshes_one_gets_tokens(hub: Hub) -> None:
    app = await console(hub)
    tokens = await app.tokens()
    results = await asyncio.gather(*(app.refresh(tokens["refresh_token"]) for _ in range(2)))
    assert sorted(status for status, _ in results) == [200, 400]


async def test_a_totp_code_works_once(hub: Hub) -> None:
    app = await console(hub)
    code = pyotp.TOTP(app.seed).now()
    assert (await app.sign_in(code=code)).url.path == "/console/callback"
    hub.client.session.cookie_jar.clear()
    again = await app.sign_in(code=code)
    assert again.status == 401
    assert "Wrong username, password or code." in await again.text()


async def test_wrong_password_says_nothing_about_the_account(hub: Hub) -> None:
    app = await console(hub)
    texts = []
    for username in ("alice", "nobody-here"):
        page = await hub.client.get("/oauth/authorize", params=app.authorize_params())
        fields = await app.form(page)
        response = await hub.client.post(
            "/login", data={**fields, "username": username, "password": "wrong " + PASSWORD}
        )
        assert response.status == 401
        texts.append((await response.text()).replace(fields["csrf"], ""))
    assert texts[0].count("Wrong username, password or code.") == 1
    assert "nobody-here" not in texts[1]


async def test_brute_force_is_slowed_down(hub: Hub) -> None:
    app = await console(hub)
    statuses = []
    for _ in range(5):
        page = await hub.client.get("/login")
        fields = await app.form(page)
        response = await hub.client.post(
            "/login", data={**fields, "username": "alice", "password": "guess " + PASSWORD}
        )
        statuses.append(response.status)
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses[3:]
    page = await hub.client.get("/login")
    blocked = await hub.client.post(
        "/login", data={**await app.form(page), "username": "alice", "password": PASSWORD}
    )
    assert blocked.status == 429  # even the right password waits
    assert "Wait" in await blocked.text()


async def test_forms_need_the_csrf_token_and_our_origin(hub: Hub) -> None:
    app = await console(hub)
    await hub.client.get("/login")
    missing = await hub.client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert missing.status == 403
    page = await hub.client.get("/login")
    fields = await app.form(page)
    cross = await hub.client.post(
        "/login",
        data={**fields, "username": "alice", "password": PASSWORD},
        headers={"Origin": "https://attacker.example"},
    )
    assert cross.status == 403


async def test_sign_in_replaces_the_session(hub: Hub) -> None:
    app = await console(hub)
    await hub.client.get("/login")
    planted = _session_cookie(app)
    await app.sign_in()
    signed_in = _session_cookie(app)
    assert signed_in
    assert signed_in != planted
    hub.client.session.cookie_jar.clear()
    hub.client.session.cookie_jar.update_cookies({"tp_session": planted})
    response = await hub.client.get("/login/done", allow_redirects=False)
    assert response.status == 303  # the planted ID is worth nothing


async def test_session_cookie_flags(hub: Hub) -> None:
    response = await hub.client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_disabling_a_user_ends_sessions_and_tokens(hub: Hub) -> None:
    app = await console(hub)
    tokens = await app.tokens()
    await users.disable_user(hub.db, "alice")
    assert await api_status(hub, tokens["access_token"]) == 401
    status, _ = await app.refresh(tokens["refresh_token"])
    assert status == 400
    response = await hub.client.get("/login/done", allow_redirects=False)
    assert response.status == 303


async def test_mfa_reset_means_the_old_authenticator_fails(hub: Hub) -> None:
    app = await console(hub)
    from server.auth.credentials import SecretBox
    from server.settings import SETTINGS

    box = SecretBox.load(hub.client.app[SETTINGS].keys_dir)
    await users.reset_mfa(hub.db, box, "alice")
    response = await app.sign_in()
    assert response.status == 401


def _session_cookie(app: Console) -> str:
    for cookie in app.hub.client.session.cookie_jar:
        if cookie.key == "tp_session":
            return cookie.value
    return ""


async def test_idle_and_absolute_timeouts_end_the_session(hub: Hub) -> None:
    app = await console(hub)
    await app.sign_in()
    assert (await hub.client.get("/login/done", allow_redirects=False)).status == 200
    for column, age in (("last_seen_at", dt.timedelta(minutes=31)),
                        ("created_at", dt.timedelta(hours=12, minutes=1))):  # fmt: skip
        async with hub.db.transaction() as session:
            await session.execute(
                update(WebSession).values({column: dt.datetime.now(dt.UTC) - age})
            )
        response = await hub.client.get("/login/done", allow_redirects=False)
        assert response.status == 303, column
        await app.sign_in()  # a fresh session for the next round
