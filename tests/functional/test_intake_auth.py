"""Who may post to ``/ncpdp/script``: every bad token is a 401 and leaves nothing stored."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from sqlalchemy import func, select

from server.auth.keys import load_signing_keys
from server.prescriptions.models import InboundMessage
from server.settings import Settings
from tests.conftest import ISSUER, Hub
from tests.functional.intake_helpers import post_script, sample_newrx


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": "forger",
        "client_id": "forger",
        "iat": now,
        "exp": now + 300,
        "jti": "j1",
        "scope": "script:send",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hub_key(settings: Settings) -> ECKey:
    key = load_signing_keys(settings.keys_dir).active.keys[0]
    assert isinstance(key, ECKey)
    return key


def _signed(settings: Settings, header: dict[str, Any] | None = None, **claims: Any) -> str:
    key = _hub_key(settings)
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    return jwt.encode({k: v for k, v in head.items() if v is not None}, _claims(**claims), key)


FORGERIES: dict[str, Callable[[Settings], str]] = {
    "garbage": lambda s: "not-a-jwt",
    "expired": lambda s: _signed(s, exp=int(time.time()) - 10, iat=int(time.time()) - 400),
    "wrong audience": lambda s: _signed(s, aud="https://elsewhere.example"),
    "wrong issuer": lambda s: _signed(s, iss="https://evil.example"),
    "no typ": lambda s: _signed(s, header={"typ": None}),
    "typ JWT": lambda s: _signed(s, header={"typ": "JWT"}),
    "missing jti": lambda s: _signed(s, jti=None),
    "other key": lambda s: jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": _hub_key(s).kid},
        _claims(),
        ECKey.generate_key("P-256", private=True),
    ),
    "alg none": lambda s: (
        f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': _hub_key(s).kid})}.{_b64(_claims())}."
    ),
    "HS256 with the public key": lambda s: jwt.encode(
        {"alg": "HS256", "typ": "at+jwt", "kid": _hub_key(s).kid},
        _claims(),
        OctKey.import_key(json.dumps(_hub_key(s).as_dict(private=False)).encode()),
        algorithms=["HS256"],
    ),
    "tampered payload": lambda s: ".".join(
        [
            _signed(s).split(".")[0],
            _b64(_claims(scope="script:send rx:read")),
            _signed(s).split(".")[2],
        ]
    ),
}


async def _stored(hub: Hub) -> int:
    async with hub.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


async def test_no_token_is_401_with_challenge(hub: Hub) -> None:
    await hub.pharmacy()
    response = await hub.client.post(
        "/ncpdp/script", data=sample_newrx(), headers={"Content-Type": "application/xml"}
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.content_type == "application/problem+json"
    assert await _stored(hub) == 0


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_forged_or_invalid_tokens_are_401(hub: Hub, settings: Settings, forgery: str) -> None:
    await hub.pharmacy()
    await hub.sender_token()  # the app is up and its key exists
    token = FORGERIES[forgery](settings)
    response = await post_script(hub, sample_newrx(), token)
    assert response.status == 401, forgery
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert await _stored(hub) == 0


async def test_valid_forged_control_is_accepted(hub: Hub, settings: Settings) -> None:
    """The forging helpers make valid tokens when nothing is wrong: the 401s above are real."""
    await hub.pharmacy()
    await hub.sender_token()
    response = await post_script(hub, sample_newrx(), _signed(settings))
    assert response.status == 200
    assert b"<Status>" in await response.read()


async def test_token_without_script_send_is_403(hub: Hub) -> None:
    await hub.pharmacy()
    reader = await hub.machine_client("rx:read", pharmacy="1234567")
    token = await hub.token(reader, scope="rx:read")
    response = await post_script(hub, sample_newrx(), token)
    assert response.status == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert await _stored(hub) == 0
