"""Signing a person in through the hub's real browser flow (authorization code + PKCE,
password page, TOTP page) with a plain HTTP client, from outside the hub's process."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from urllib.parse import parse_qs, urlparse

import pyotp
import requests

_HIDDEN = re.compile(r'name="(csrf|return_to)" value="([^"]*)"')


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hidden_fields(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in _HIDDEN.findall(page)}


def sign_in(
    base: str,
    client_id: str,
    seed: str,
    scope: str,
    username: str,
    password: str,
    redirect_uri: str = "",
    code: str = "",
    verify: bool | str = True,
) -> str:
    """The user's access token, through the real browser flow; ``redirect_uri`` (by default
    ``base``/cb) is the client's registered redirect URI; ``code`` the TOTP code to use (by
    default the current one); ``verify`` the CA bundle of an https ``base`` (requests')."""
    redirect_uri = redirect_uri or f"{base}/cb"
    browser = requests.Session()
    verifier = "v" * 20 + "erifier-" + "x" * 30
    page = browser.get(
        f"{base}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": "s",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
        timeout=30,
        verify=verify,
    )
    page = browser.post(
        f"{base}/login",
        data={**hidden_fields(page.text), "username": username, "password": password},
        timeout=30,
        verify=verify,
    )
    landing = browser.post(
        f"{base}/login/mfa",
        data={**hidden_fields(page.text), "code": code or pyotp.TOTP(seed).now()},
        timeout=30,
        verify=verify,
    )
    code = parse_qs(urlparse(landing.url).query)["code"][0]
    tokens = requests.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
        timeout=30,
        verify=verify,
    ).json()
    return str(tokens["access_token"])
