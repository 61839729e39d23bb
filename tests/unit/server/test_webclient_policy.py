"""The console's Content-Security-Policy: the fill screens show photos and signatures fetched
behind the sign-in (blob: URLs); card payments add the provider's script and API origins from
the settings; nothing else about the policy loosens."""

from __future__ import annotations

import pytest

from server.settings import Settings, SettingsError
from server.webclient import csp, provider_origins


def directives(policy: str) -> dict[str, list[str]]:
    parts = (p.split() for p in policy.split(";") if p.strip())
    return {name: values for name, *values in parts}


def test_images_may_come_from_blob_urls_and_scripts_still_may_not() -> None:
    policy = directives(csp("https://hub.example"))
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert "frame-src" not in policy  # nothing framed: the label opens in a tab of its own


def test_the_payment_providers_script_and_api_origins_are_allowed_once_configured() -> None:
    settings = Settings(
        stripe_publishable_key="pk_test_synthetic",
        stripe_js_url="https://js.stripe.com/v3/",
        stripe_api_base="https://api.stripe.com",
    )
    policy = directives(csp(settings.issuer, provider_origins(settings)))
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["frame-src"] == ["https://js.stripe.com"]  # the real card fields are framed
    assert policy["connect-src"][-1] == "https://api.stripe.com"
    assert policy["default-src"] == ["'none'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    # card payments not configured: the policy is the plain one
    assert provider_origins(Settings()) is None


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("stripe_js_url", "http://js.example.org/v3/"),
        ("stripe_js_url", "https://js.example.org; script-src *"),
        ("stripe_js_url", "js.stripe.com/v3/"),
        ("stripe_api_base", "https://user@api.example.org"),
        ("stripe_api_base", "https://api.example.org/?a=1"),
    ],
)
def test_provider_urls_that_would_widen_the_policy_are_refused(name: str, url: str) -> None:
    with pytest.raises(SettingsError):
        Settings(**{name: url})  # type: ignore[arg-type]
