"""Tokens in tests: reading a JWT's header and claims without verifying it (to assert what the
hub issued), and getting a client-credentials token from a hub over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request


def decode_unverified(token: str) -> tuple[dict[str, object], dict[str, object]]:
    def part(segment: str) -> dict[str, object]:
        return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def client_token(base: str, client_id: str, client_secret: str, scope: str) -> str:
    """A real OAuth client-credentials access token from the hub at ``base``."""
    pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (a loopback hub of the test)
        base + "/oauth/token",
        data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode(),
        headers={
            "Authorization": "Basic " + pair,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return str(json.load(response)["access_token"])
