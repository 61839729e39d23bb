"""The console's Content-Security-Policy: the fill screens show photos and signatures fetched
behind the sign-in (blob: URLs), and nothing else about the policy loosens."""

from __future__ import annotations

from server.webclient import csp


def directives(policy: str) -> dict[str, list[str]]:
    parts = (p.split() for p in policy.split(";") if p.strip())
    return {name: values for name, *values in parts}


def test_images_may_come_from_blob_urls_and_scripts_still_may_not() -> None:
    policy = directives(csp("https://hub.example"))
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert "frame-src" not in policy  # nothing framed: the label opens in a tab of its own
