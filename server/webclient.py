"""The web client (webclient/), served by the hub: the pharmacist console at ``/``, the
patient's consult page at ``/consult/{invite}``, the patient's own page at
``/me/{pharmacy}`` and their ES modules and styles under
``/app/``. The files are listed once at start-up, so a request can name only one of them;
every page and file carries a Content-Security-Policy that allows this origin's scripts,
styles and sockets and nothing else (no inline script, no framing); with card payments
configured, also the payment provider's script origin (its card fields, framed by the real
Stripe.js) and its API origin (what those fields talk to), from the settings, nothing wider.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from .errors import NotFound
from .settings import Settings

WEBCLIENT = Path(__file__).resolve().parent.parent / "webclient"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def provider_origins(settings: Settings) -> tuple[str, str] | None:
    """The payment provider's script and API origins, when card payments are configured (the
    settings checked both URLs)."""
    if not settings.stripe_publishable_key:
        return None
    return origin(settings.stripe_js_url), origin(settings.stripe_api_base)


def csp(issuer: str, provider: tuple[str, str] | None = None) -> str:
    parts = urlsplit(issuer)
    socket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    script = connect = framed = ""
    if provider is not None:
        script_origin, api_origin = provider
        script = f" {script_origin}"
        connect = f" {api_origin}"
        framed = f"frame-src {script_origin}; "
    return (
        f"default-src 'none'; script-src 'self'{script}; style-src 'self'; "
        "img-src 'self' data: blob:; "
        f"media-src 'self' blob: mediastream:; connect-src 'self' {socket}{connect}; {framed}"
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _headers(issuer: str, camera: bool, provider: tuple[str, str] | None) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp(issuer, provider),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # an invite token in the page's URL is not sent on, not even to the hub's own logs
        # (only the origin is; no-referrer would blank the Origin the hub's checks need)
        "Referrer-Policy": "strict-origin",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()"
        if camera
        else "camera=(), microphone=(), geolocation=()",
        "Cache-Control": "no-cache",
    }


def _assets(root: Path) -> dict[str, Path]:
    """Every file under ``root/app`` by its URL path, read once."""
    app_dir = root / "app"
    return {
        "/app/" + path.relative_to(app_dir).as_posix(): path
        for path in sorted(app_dir.rglob("*"))
        if path.is_file() and path.suffix in TYPES
    }


class WebClient:
    def __init__(self, root: Path, issuer: str, provider: tuple[str, str] | None = None) -> None:
        self.assets: Mapping[str, Path] = _assets(root)
        self.console = root / "index.html"
        self.patient = root / "consult.html"
        self.me = root / "me.html"
        self.page_headers = _headers(issuer, camera=True, provider=provider)

    def _file(self, path: Path, content_type: str) -> web.FileResponse:
        response = web.FileResponse(path, headers=self.page_headers)
        response.content_type = content_type
        return response

    async def console_page(self, request: web.Request) -> web.FileResponse:
        return self._file(self.console, "text/html")

    async def patient_page(self, request: web.Request) -> web.FileResponse:
        return self._file(self.patient, "text/html")

    async def me_page(self, request: web.Request) -> web.FileResponse:
        return self._file(self.me, "text/html")

    async def asset(self, request: web.Request) -> web.FileResponse:
        path = self.assets.get(request.path)
        if path is None:
            raise NotFound("No such file.")
        return self._file(path, TYPES[path.suffix])


def setup(app: web.Application, settings: Settings) -> None:
    client = WebClient(WEBCLIENT, settings.issuer, provider_origins(settings))
    app.router.add_get("/", client.console_page)
    app.router.add_get("/consult/{invite}", client.patient_page)
    app.router.add_get("/me/{pharmacy}", client.me_page)
    app.router.add_get("/app/{path:.+}", client.asset)
