"""Helpers for EPCS tests: a synthetic PKI whose CRLs a real local HTTP server serves."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.pki import Authority, root, write_roots


@dataclasses.dataclass
class Pki:
    ca: Authority
    intermediate: Authority
    crls: dict[str, bytes]
    requests: list[str]
    roots: Path


async def serve_pki(aiohttp_server: object, tmp_path: Path) -> Pki:
    """A root and an intermediate whose CRLs a local HTTP server serves (500 for the rest)."""
    crls: dict[str, bytes] = {}
    requests: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        requests.append(request.path)
        data = crls.get(request.path)
        if data is None:
            return web.Response(status=500)
        return web.Response(body=data, content_type="application/pkix-crl")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    server: TestServer = await aiohttp_server(app)  # type: ignore[operator]
    base = f"http://127.0.0.1:{server.port}"
    ca = root()
    ca.crl_url = f"{base}/root.crl"
    intermediate = ca.authority("Synthetic Intermediate CA", crl_url=f"{base}/intermediate.crl")
    crls["/root.crl"] = ca.crl_der()
    crls["/intermediate.crl"] = intermediate.crl_der()
    return Pki(ca, intermediate, crls, requests, write_roots(tmp_path / "roots.pem", ca))
