"""Sign-in for people: the authorization endpoint and the server-rendered sign-in pages.

``GET /oauth/authorize`` validates the client's request first (an unknown client or redirect
URI is answered on the hub, never redirected); without a signed-in user it sends the browser
to ``/login``, which asks for username and password, then for a TOTP code, then returns to
the authorization request, which redirects to the client with a code. Every form carries the
session's CSRF token and is refused from another origin; failures say nothing about whether
the account exists; every attempt is audited and throttled (:mod:`server.auth.throttle`).
"""

from __future__ import annotations

import html
import uuid
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from multidict import MultiDict
from sqlalchemy import or_, select, update

from .. import audit
from ..db import DATABASE
from ..db.models import utcnow
from ..http import PROXIES, read_body
from ..metrics import OBSERVER
from ..settings import SETTINGS
from . import throttle
from .credentials import SECRETS, accept_totp, password_matches, totp_context
from .devices import known_device, remember_device
from .failures import FAILURES
from .flows import GrantUser
from .models import User, WebSession
from .oauth import OAUTH, AiohttpOAuth2Request
from .sessions import SESSIONS, csrf_ok, user_of
from .store import active_user
from .throttle import CLOCK

FORM = "application/x-www-form-urlencoded"
AUTHORIZE = "/oauth/authorize"
ACCOUNT = "/login/done"
GENERIC_FAILURE = "Wrong username, password or code."
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    # not no-referrer: under it a browser's form posts carry "Origin: null", which the
    # same-origin check refuses; strict-origin sends only the origin, never the path
    "Referrer-Policy": "strict-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


async def authorize(request: web.Request) -> web.StreamResponse:
    """``GET /oauth/authorize``: authorization code with PKCE (S256) for browser clients."""
    sessions = request.app[SESSIONS]
    session = await sessions.current(request)
    user = await user_of(request.app[DATABASE], session)
    if user is not None and session is not None and _wants_fresh_sign_in(request, session):
        user = None  # step-up: password and code again, then the same request without it
    grant_user = None
    if user is not None and session is not None:
        grant_user = GrantUser(
            user.id, user.pharmacy_id, user.role, user.username, session.authenticated_at
        )
    oauth_request = _oauth_request(request, MultiDict())
    status, body, headers = await request.app[OAUTH].authorization_response(
        oauth_request, grant_user
    )
    if status == 401:  # a valid request, nobody signed in yet
        raise web.HTTPSeeOther("/login?" + urlencode({"return_to": _without_step_up(request)}))
    if status == 302 and "Location" in headers:
        if user is not None:
            await audit.record(
                request.app[DATABASE],
                _actor(request, user),
                audit.Event(
                    "oauth.authorize",
                    "oauth_client",
                    str(request.query.get("client_id", ""))[:64],
                    outcome="success" if "code=" in headers["Location"] else "failure",
                ),
            )
        raise web.HTTPFound(headers["Location"], headers=SECURITY_HEADERS)
    message = body.get("error_description") or body.get("error") or "Invalid request"
    return _page("Cannot sign in", f"<p>{html.escape(str(message))}</p>", status=400)


def _wants_fresh_sign_in(request: web.Request, session: WebSession) -> bool:
    """OpenID ``prompt=login``, or ``max_age`` older than the session's sign-in."""
    if request.query.get("prompt") == "login":
        return True
    max_age = request.query.get("max_age", "")
    if not (max_age.isascii() and max_age.isdigit()) or session.authenticated_at is None:
        return False
    return (utcnow() - session.authenticated_at).total_seconds() > int(max_age)


def _without_step_up(request: web.Request) -> str:
    """The authorization request to return to, minus what forced the sign-in (no loop)."""
    query = [(k, v) for k, v in request.query.items() if k not in ("prompt", "max_age")]
    return f"{request.path}?{urlencode(query)}"


async def login_form(request: web.Request) -> web.StreamResponse:
    """``GET /login``: username and password."""
    response = web.Response()
    sessions = request.app[SESSIONS]
    session = await sessions.current(request)
    if session is None:
        session = await sessions.start(response)
    elif session.user_id is not None or session.pending_user_id is not None:
        session = await sessions.promote(session, response)  # signing in anew: a new session
    return _login_page(response, session, _return_to(request.query.get("return_to")))


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /login``: check the password, then ask for the TOTP code."""
    form, session = await _form(request)
    return_to = _return_to(form.get("return_to"))
    gate = _throttle(request)
    username = form.get("username", "").strip().lower()[:64]
    user = await _find_user(request, username)
    device = known_device(request, user.id if user else None, request.app[CLOCK]())
    keys = _throttle_keys(request, username, device)
    waiting = await gate.reserve(keys)
    if waiting:
        await _audit_login(request, user, "throttled", username, device=device)
        return _login_page(web.Response(status=429), session, return_to, _too_many(waiting))
    if not await password_matches(user.password_hash if user else None, form.get("password", "")):
        await _audit_login(request, user, "failure", username, device=device)
        return _login_page(web.Response(status=401), session, return_to, GENERIC_FAILURE)
    assert user is not None
    await gate.take_back(keys)
    response = web.HTTPSeeOther("/login/mfa?" + urlencode({"return_to": return_to}))
    await request.app[SESSIONS].promote(session, response, pending=user.id)
    raise response


async def mfa_form(request: web.Request) -> web.StreamResponse:
    """``GET /login/mfa``: the TOTP code, after a right password."""
    session = await request.app[SESSIONS].current(request)
    if session is None or session.pending_user_id is None:
        raise web.HTTPSeeOther("/login")
    return _mfa_page(web.Response(), session, _return_to(request.query.get("return_to")))


async def mfa(request: web.Request) -> web.StreamResponse:
    """``POST /login/mfa``: check the code (once only), then sign in with a new session."""
    form, session = await _form(request)
    if session.pending_user_id is None:
        raise web.HTTPSeeOther("/login")
    return_to = _return_to(form.get("return_to"))
    gate = _throttle(request)
    now = request.app[CLOCK]()
    user = await active_user(request.app[DATABASE], session.pending_user_id)
    device = known_device(request, user.id if user else None, now)
    account = user.username if user else str(session.pending_user_id)
    keys = _throttle_keys(request, account, device)
    waiting = await gate.reserve(keys)
    if waiting:
        await _audit_login(request, user, "throttled", None, "totp", device)
        return _mfa_page(web.Response(status=429), session, return_to, _too_many(waiting))
    step = _totp_step(request, user, form.get("code", ""))
    if user is None or step is None or not await _use_step(request, user.id, step):
        await _audit_login(request, user, "failure", None, "totp", device)
        return _mfa_page(web.Response(status=401), session, return_to, GENERIC_FAILURE)
    await gate.take_back(keys)
    # the device's or the account's own failures start again; not the account's when signing
    # in from a known device (they may be an attacker's, who would get a fresh round)
    await gate.signed_in(cleared=keys[:1], reduced=[f"ip:{_ip(request)}"])
    response = web.HTTPSeeOther(return_to)
    await request.app[SESSIONS].promote(session, response, user_id=user.id)
    remember_device(request, response, user.id, device, now)
    await _audit_login(request, user, "success", None, "totp", device)
    raise response


async def signed_in(request: web.Request) -> web.StreamResponse:
    """``GET /login/done``: who is signed in, and a way out."""
    session = await request.app[SESSIONS].current(request)
    user = await user_of(request.app[DATABASE], session)
    if user is None or session is None:
        raise web.HTTPSeeOther("/login")
    content = f"""<p>Signed in as <strong>{html.escape(user.username)}</strong>.</p>
    <form method="post" action="/logout">
      <input type="hidden" name="csrf" value="{html.escape(session.csrf)}">
      <button type="submit">Sign out</button>
    </form>"""
    return _page("Signed in", content)


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /logout``: end the browser session (API tokens are revoked at /oauth/revoke)."""
    _, session = await _form(request)
    user = await user_of(request.app[DATABASE], session)
    response = web.HTTPSeeOther("/login")
    await request.app[SESSIONS].end(session, response)
    if user is not None:
        await audit.record(
            request.app[DATABASE],
            _actor(request, user),
            audit.Event("logout", "user", str(user.id)),
        )
    raise response


def _totp_step(request: web.Request, user: User | None, code: str) -> int | None:
    if user is None or user.totp_secret is None:
        return None
    seed = request.app[SECRETS].open(user.totp_secret, totp_context(user.id))
    return accept_totp(seed, code, user.totp_last_step)


async def _use_step(request: web.Request, user_id: uuid.UUID, step: int) -> bool:
    """Record ``step`` as used unless a later or equal one already was (a replay)."""
    async with request.app[DATABASE].transaction() as session:
        result = await session.execute(
            update(User)
            .where(
                User.id == user_id,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(
                totp_last_step=step,
                totp_confirmed_at=utcnow(),
            )
        )
    return bool(getattr(result, "rowcount", 0) == 1)


async def _find_user(request: web.Request, username: str) -> User | None:
    async with request.app[DATABASE].sessions() as session:
        return await session.scalar(
            select(User).where(User.username == username, User.disabled_at.is_(None))
        )


async def _form(request: web.Request) -> tuple[MultiDict[str], WebSession]:
    """The posted form of a same-origin request with the session's CSRF token, or 403."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != request.app[SETTINGS].issuer:
        raise web.HTTPForbidden(text="Cross-site form posts are refused.")
    if request.content_type != FORM:
        raise web.HTTPUnsupportedMediaType(text=f"Send the form as {FORM}.")
    body = await read_body(request, request.app[SETTINGS].max_form_bytes)
    try:
        form = MultiDict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=16))
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="The form could not be read.") from None
    session = await request.app[SESSIONS].current(request)
    if session is None or not csrf_ok(session, form.get("csrf")):
        raise web.HTTPForbidden(text="The form expired or was not sent from this site: reload it.")
    return form, session


def _return_to(value: str | None) -> str:
    """Only back into an authorization request on this hub; anything else to the account
    page (never to another site: no open redirect)."""
    if value and value.startswith(AUTHORIZE + "?") and "\\" not in value:
        return value
    return ACCOUNT


def _oauth_request(request: web.Request, form: MultiDict[str]) -> AiohttpOAuth2Request:
    settings = request.app[SETTINGS]
    return AiohttpOAuth2Request(
        request.method,
        settings.issuer + request.path_qs,
        request.headers,
        MultiDict(request.query),
        form,
    )


def _throttle(request: web.Request) -> throttle.Throttle:
    return throttle.Throttle(request.app[DATABASE], request.app[CLOCK])


def _throttle_keys(request: web.Request, account: str, device: str | None) -> list[str]:
    """The throttle keys of an attempt: the known device's alone, or the account's and the
    address's (the first key is the one a sign-in clears)."""
    if device is not None:
        return [f"device:{device}"]
    return [f"user:{account}", f"ip:{_ip(request)}"]


def _ip(request: web.Request) -> str:
    return request.app[PROXIES].client_ip(request) or "unknown"


def _actor(request: web.Request, user: User) -> audit.Actor:
    return audit.Actor("user", str(user.id), user.pharmacy_id, _ip(request))


async def _audit_login(
    request: web.Request,
    user: User | None,
    outcome: str,
    attempted: str | None,
    factor: str = "password",
    device: str | None = None,
) -> None:
    actor = _actor(request, user) if user else audit.Actor("anonymous", "-", None, _ip(request))
    detail: dict[str, str] = {"factor": factor}
    if device is not None:
        detail["device"] = "known"
    if user is None and attempted:
        detail["username"] = attempted
    resource = str(user.id) if user else None
    event = audit.Event("login", "user", resource, outcome=outcome, detail=detail)
    if outcome != "success":
        request.app[OBSERVER].signin("staff", outcome)
    if outcome == "throttled":  # refused unheard, at any rate anyone likes: counted, summarised
        request.app[FAILURES].note(actor, event)
    else:
        await audit.record(request.app[DATABASE], actor, event)


def _too_many(seconds: int) -> str:
    return f"Too many attempts. Wait {seconds} seconds, then try again."


def _login_page(
    response: web.Response, session: WebSession, return_to: str, error: str | None = None
) -> web.Response:
    fields = """
      <label for="username">Username</label>
      <input id="username" name="username" autocomplete="username" required autofocus>
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password"
             required>"""
    return _form_page(response, "Sign in", "/login", session, return_to, fields, error)


def _mfa_page(
    response: web.Response, session: WebSession, return_to: str, error: str | None = None
) -> web.Response:
    fields = """
      <label for="code">6-digit code from your authenticator app</label>
      <input id="code" name="code" inputmode="numeric" pattern="[0-9 ]{6,7}"
             autocomplete="one-time-code" required autofocus>"""
    return _form_page(response, "Verify it is you", "/login/mfa", session, return_to, fields, error)


def _form_page(
    response: web.Response,
    title: str,
    action: str,
    session: WebSession,
    return_to: str,
    fields: str,
    error: str | None,
) -> web.Response:
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    content = f"""{alert}
    <form method="post" action="{action}">
      <input type="hidden" name="csrf" value="{html.escape(session.csrf)}">
      <input type="hidden" name="return_to" value="{html.escape(return_to)}">{fields}
      <button type="submit">Continue</button>
    </form>"""
    return _page(title, content, response=response)


def _page(
    title: str, content: str, *, status: int = 200, response: web.Response | None = None
) -> web.Response:
    response = response or web.Response(status=status)
    response.content_type = "text/html"
    response.charset = "utf-8"
    response.headers.update(SECURITY_HEADERS)
    response.text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Telepharmacy Hub</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; background: #f4f6f8; color: #1b2733;
         display: grid; place-items: center; min-height: 100vh; margin: 0; }}
  main {{ background: #fff; padding: 2rem; border-radius: 8px; width: min(22rem, 90vw);
         box-shadow: 0 2px 8px rgba(0,0,0,.12); }}
  h1 {{ font-size: 1.3rem; margin-top: 0; }}
  label {{ display: block; margin: 1rem 0 .25rem; font-weight: 600; }}
  input {{ width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem;
          border: 1px solid #8a99a8; border-radius: 4px; }}
  input:focus, button:focus {{ outline: 3px solid #1d6fd6; outline-offset: 1px; }}
  button {{ margin-top: 1.5rem; width: 100%; padding: .7rem; font-size: 1rem; border: 0;
           border-radius: 4px; background: #1d5fb8; color: #fff; cursor: pointer; }}
  .error {{ background: #fdecea; color: #8a1c12; padding: .6rem; border-radius: 4px; }}
</style></head>
<body><main><h1>{html.escape(title)}</h1>{content}</main></body></html>"""
    return response
