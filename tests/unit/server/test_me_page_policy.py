"""The patient page's Content-Security-Policy with card payments configured: the provider's
script and frames from the configured Stripe.js URL's origin, its API from the configured API
base's origin, nothing wider; unchanged when card payments are not configured."""

from __future__ import annotations

import dataclasses

from server.settings import Settings
from server.webclient import csp, with_payment_provider

ISSUER = "https://hub.example"


def directives(policy: str) -> dict[str, list[str]]:
    parts = (p.split() for p in policy.split(";") if p.strip())
    return {name: values for name, *values in parts}


def settings(**changes: object) -> Settings:
    return dataclasses.replace(Settings.from_env({"TELEPHARM_ISSUER": ISSUER}), **changes)


def test_the_configured_provider_origins_are_allowed_and_nothing_else() -> None:
    configured = settings(
        stripe_api_key="sk_test_synthetic",
        stripe_js_url="https://js.stripe.com/v3/",
        stripe_api_base="https://api.stripe.com",
    )
    policy = directives(with_payment_provider(csp(ISSUER), configured))
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["frame-src"] == ["https://js.stripe.com"]
    assert policy["connect-src"] == ["'self'", "wss://hub.example", "https://api.stripe.com"]
    before = directives(csp(ISSUER))
    changed = {k for k in set(policy) | set(before) if policy.get(k) != before.get(k)}
    assert changed == {"script-src", "frame-src", "connect-src"}


def test_a_local_provider_is_one_origin_and_unconfigured_changes_nothing() -> None:
    local = settings(
        stripe_api_key="sk_test_synthetic",
        stripe_js_url="http://127.0.0.1:8420/js.stripe.com/v3/",
        stripe_api_base="http://127.0.0.1:8420",
    )
    policy = directives(with_payment_provider(csp(ISSUER), local))
    assert policy["script-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert policy["connect-src"][-1] == "http://127.0.0.1:8420"
    assert with_payment_provider(csp(ISSUER), settings()) == csp(ISSUER)
