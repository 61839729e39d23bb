"""TURN REST credentials as coturn's use-auth-secret checks them."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest

from signaling.turn import IceServer, ice_servers, mint, still_valid

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
SECRET = "a-shared-turn-secret"


def test_username_and_credential_follow_the_rest_draft() -> None:
    username, credential = mint(SECRET, "consult-1", NOW, dt.timedelta(minutes=10))
    expiry, consult = username.split(":")
    assert int(expiry) == int((NOW + dt.timedelta(minutes=10)).timestamp())
    assert consult == "consult-1"
    expected = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    assert SECRET not in credential


def test_validity_ends_with_the_ttl_and_forgeries_fail() -> None:
    username, credential = mint(SECRET, "consult-1", NOW, dt.timedelta(minutes=10))
    assert still_valid(SECRET, username, credential, NOW)
    assert not still_valid(SECRET, username, credential, NOW + dt.timedelta(minutes=11))
    assert not still_valid("another-secret", username, credential, NOW)
    later = f"{int(NOW.timestamp()) + 10**6}:consult-1"  # a forged longer expiry
    assert not still_valid(SECRET, later, credential, NOW)
    assert not still_valid(SECRET, "²:consult-1", credential, NOW)  # no ValueError


def test_ice_servers_keep_stun_and_credential_turn() -> None:
    urls = (
        "stun:turn.example:3478",
        "turn:turn.example:3478?transport=udp",
        "turns:turn.example:443",
    )
    stun, turn = ice_servers(urls, SECRET, "consult-1", NOW)
    assert stun == IceServer(("stun:turn.example:3478",))
    assert turn.urls == urls[1:]
    assert turn.username
    assert turn.credential
    assert still_valid(SECRET, turn.username, turn.credential, NOW)
    assert turn.to_json()["urls"] == list(urls[1:])
    assert ice_servers((), SECRET, "consult-1", NOW) == []


@pytest.mark.parametrize(
    ("secret", "consult", "now"),
    [
        ("", "c", NOW),
        (SECRET, "", NOW),
        (SECRET, "a:b", NOW),
        (SECRET, "c", NOW.replace(tzinfo=None)),
    ],
)
def test_bad_inputs_are_programming_errors(secret: str, consult: str, now: dt.datetime) -> None:
    with pytest.raises(ValueError, match=r"secret|consult id|timezone"):
        mint(secret, consult, now)
