from aiohttp.test_utils import make_mocked_request

from server.http import ProxyTrust


def _request(remote: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers)
    return request.clone(remote=remote)


def test_forwarded_for_is_ignored_from_untrusted_peers() -> None:
    trust = ProxyTrust(["10.0.0.1"])
    assert trust.client_ip(_request("203.0.113.9", "198.51.100.7")) == "203.0.113.9"


def test_forwarded_for_from_trusted_proxy_gives_nearest_untrusted_hop() -> None:
    trust = ProxyTrust(["10.0.0.0/24"])
    request = _request("10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.5")
    assert trust.client_ip(request) == "198.51.100.7"
