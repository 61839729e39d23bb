"""OAuth 2.0 authorization server (authlib) and bearer-token protection for the hub's APIs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc6750.errors import InsufficientScopeError
from multidict import MultiDict
from sqlalchemy import select

from .. import audit
from ..db import DATABASE, Database
from ..db.models import utcnow
from ..errors import Forbidden, Unauthorized
from ..http import PROXIES, read_body
from ..metrics import OBSERVER
from ..settings import SETTINGS, Settings
from . import login
from .clients import CONSOLE_CLIENT_ID, RegisteredClient, console_client
from .credentials import SECRETS, SecretBox
from .failures import FAILURES, failures_ctx
from .flows import AccessToken, Flows, GrantUser
from .grants import user_info
from .keys import load_signing_keys
from .models import OAuthClient, User
from .oauth import OAUTH, AiohttpOAuth2Request, OAuthService
from .sessions import SESSIONS, Sessions
from .throttle import CLOCK

FORM = "application/x-www-form-urlencoded"
CLIENT_LOOKUP_TIMEOUT = 10.0


def _client_query(db: Database, loop: asyncio.AbstractEventLoop, issuer: str):  # type: ignore[no-untyped-def]
    """A blocking client lookup for authlib's worker thread, run on the event loop's engine;
    the hub's own console is built in."""
    console = console_client(issuer)

    async def fetch(client_id: str) -> RegisteredClient | None:
        async with db.sessions() as session:
            row = await session.scalar(
                select(OAuthClient).where(
                    OAuthClient.client_id == client_id, OAuthClient.disabled_at.is_(None)
                )
            )
        return RegisteredClient.from_row(row) if row else None

    def query(client_id: str) -> RegisteredClient | None:
        if not client_id or len(client_id) > 64:
            return None
        if client_id == CONSOLE_CLIENT_ID:
            return console
        future = asyncio.run_coroutine_threadsafe(fetch(client_id), loop)
        return future.result(CLIENT_LOOKUP_TIMEOUT)

    return query


async def _oauth_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    keys = await asyncio.to_thread(load_signing_keys, settings.keys_dir)
    loop = asyncio.get_running_loop()
    app[OAUTH] = OAuthService(
        issuer=settings.issuer,
        audience=settings.audience,
        keys=keys,
        access_token_ttl=settings.access_token_ttl,
        query_client=_client_query(app[DATABASE], loop, settings.issuer),
        flows=Flows(app[DATABASE], loop, keys, settings.issuer),
    )
    app[SECRETS] = await asyncio.to_thread(SecretBox.load, settings.keys_dir)
    app[SESSIONS] = Sessions(app[DATABASE], secure=settings.issuer.startswith("https://"))
    yield


def _oauth_json(status: int, body: dict[str, object], headers: dict[str, str]) -> web.Response:
    headers = {**headers, "Cache-Control": "no-store", "Pragma": "no-cache"}
    headers.pop("Content-Type", None)
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )


class _BadForm(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


async def _oauth_form(request: web.Request) -> AiohttpOAuth2Request:
    """The posted form as authlib's request, or a ``_BadForm`` with the OAuth error."""
    settings = request.app[SETTINGS]
    if request.content_type != FORM:
        raise _BadForm(
            _oauth_json(400, {"error": "invalid_request", "error_description": f"use {FORM}"}, {})
        )
    body = await read_body(request, settings.max_form_bytes)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise _BadForm(_oauth_json(400, {"error": "invalid_request"}, {})) from None
    return AiohttpOAuth2Request(
        request.method,
        settings.issuer + request.path,
        request.headers,
        MultiDict(request.query),
        MultiDict(pairs),
    )


async def token(request: web.Request) -> web.Response:
    """``POST /oauth/token``: client credentials, authorization code (PKCE), refresh."""
    try:
        oauth_request = await _oauth_form(request)
    except _BadForm as bad:
        return bad.response
    status, payload, headers = await request.app[OAUTH].token_response(oauth_request)
    await _audit_token(request, oauth_request, status, payload)
    return _oauth_json(status, payload, headers)


def _endpoint(name: str, action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            oauth_request = await _oauth_form(request)
        except _BadForm as bad:
            return bad.response
        status, payload, headers = await request.app[OAUTH].endpoint_response(name, oauth_request)
        actor = _client_actor(request, oauth_request)
        if status == 200 and (name != "revocation" or oauth_request.revoked):
            await audit.record(request.app[DATABASE], actor, audit.Event(action, "token"))
        elif status == 200:  # an unknown token "revoked": nothing happened, anyone can ask
            event = audit.Event(action, "token", detail={"revoked": "nothing"})
            request.app[FAILURES].note(actor, event)
        else:
            event = audit.Event(
                action, "token", outcome="failure", detail={"error": payload.get("error")}
            )
            request.app[FAILURES].note(actor, event)
            request.app[OBSERVER].oauth_failure(name)
        return _oauth_json(status, payload, headers)

    return handler


async def userinfo(request: web.Request) -> web.Response:
    """``GET /oauth/userinfo`` (OpenID Connect): the signed-in user of the access token."""
    token = require(request, "openid")
    user = await live_user(request, token)
    return web.json_response(
        dict(user_info(GrantUser(user.id, user.pharmacy_id, user.role, user.username)))
    )


async def live_user(request: web.Request, token: AccessToken) -> User:
    """The user of a user access token: the account active, the sign-in not ended; else 401."""
    user = await request.app[OAUTH].flows.live_user(token)
    if user is None:
        raise Unauthorized(
            "The sign-in has ended or the account is disabled.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return user


async def _audit_token(
    request: web.Request,
    oauth_request: AiohttpOAuth2Request,
    status: int,
    payload: dict[str, object],
) -> None:
    """A token issued is audited at once; a failure is counted into a summary
    (:mod:`server.auth.failures`: anybody can send them, and must not slow the intake)."""
    actor = _client_actor(request, oauth_request)
    grant_type = oauth_request.payload.grant_type
    if status == 200:
        detail = {"grant_type": grant_type, "scope": payload.get("scope")}
        event = audit.Event("oauth.token", "access_token", detail=detail)
        await audit.record(request.app[DATABASE], actor, event)
    else:
        detail = {"grant_type": grant_type, "error": payload.get("error")}
        event = audit.Event("oauth.token", "access_token", outcome="failure", detail=detail)
        request.app[FAILURES].note(actor, event)
        request.app[OBSERVER].oauth_failure("token")


def _client_actor(request: web.Request, oauth_request: AiohttpOAuth2Request) -> audit.Actor:
    """The client authlib authenticated, or the ``client_id`` it claimed when it failed (in
    the form or in HTTP Basic)."""
    client = getattr(oauth_request, "client", None)
    client_id = client.client_id if client else _claimed_client_id(oauth_request)
    return audit.Actor(
        "client",
        client_id[:64],
        getattr(client, "pharmacy_id", None),
        request.app[PROXIES].client_ip(request),
    )


def _claimed_client_id(oauth_request: AiohttpOAuth2Request) -> str:
    try:
        basic, _ = extract_basic_authorization(oauth_request.headers)
    except (UnicodeDecodeError, ValueError):
        basic = None
    return str(oauth_request.payload.client_id or basic or "unknown")


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[OAUTH].keys.public_jwks())


async def metadata(request: web.Request) -> web.Response:
    return web.json_response(request.app[OAUTH].metadata())


def require(request: web.Request, scope: str) -> AccessToken:
    """The caller's verified access token carrying ``scope``, or a 401/403 problem."""
    try:
        return request.app[OAUTH].verify(request.headers.get("Authorization"), scope)
    except InsufficientScopeError as exc:
        raise Forbidden(
            f"The access token lacks the scope {scope}.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        ) from exc
    except OAuth2Error as exc:
        raise Unauthorized(
            "A valid bearer access token is required.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(_oauth_ctx)
    app.cleanup_ctx.append(failures_ctx)
    app[CLOCK] = utcnow  # tests set their own clock after this
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/oauth/revoke", _endpoint("revocation", "oauth.revoke"))
    app.router.add_post("/oauth/introspect", _endpoint("introspection", "oauth.introspect"))
    app.router.add_route("*", "/oauth/userinfo", userinfo)
    app.router.add_get("/oauth/authorize", login.authorize)
    app.router.add_get("/login", login.login_form)
    app.router.add_post("/login", login.login)
    app.router.add_get("/login/mfa", login.mfa_form)
    app.router.add_post("/login/mfa", login.mfa)
    app.router.add_get("/login/done", login.signed_in)
    app.router.add_post("/logout", login.logout)
    app.router.add_get("/oauth/jwks", jwks)
    app.router.add_get("/.well-known/oauth-authorization-server", metadata)
    app.router.add_get("/.well-known/openid-configuration", metadata)
