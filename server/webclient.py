"""The web client (webclient/), served by the hub: the pharmacist console at ``/``, the
patient's consult page at ``/consult/{invite}``, the patient's own page at
``/me/{pharmacy}`` and their ES modules and styles under
``/app/``. The files are listed once at start-up, so a request can name only one of them;
every page and file carries a Content-Security-Policy that allows this origin's scripts,
styles and sockets and nothing else (no inline script, no framing).
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


def csp(issuer: str) -> str:
    parts = urlsplit(issuer)
    socket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"media-src 'self' blob: mediastream:; connect-src 'self' {socket}; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _headers(issuer: str, camera: bool) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp(issuer),
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
    def __init__(self, root: Path, issuer: str) -> None:
        self.assets: Mapping[str, Path] = _assets(root)
        self.console = root / "index.html"
        self.patient = root / "consult.html"
        self.me = root / "me.html"
        self.page_headers = _headers(issuer, camera=True)

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


def with_payment_provider(policy: str, settings: Settings) -> str:
    """``policy`` also allowing the payment provider's card fields on the patient's page: its
    script and frames from TELEPHARM_STRIPE_JS_URL's origin, its API at
    TELEPHARM_STRIPE_API_BASE's origin; nothing more (the policy unchanged when card
    payments are not configured)."""
    if not settings.stripe_api_key:
        return policy

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    js, api = origin(settings.stripe_js_url), origin(settings.stripe_api_base)
    directives: dict[str, str] = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value
    for name, source in (("script-src", js), ("frame-src", js), ("connect-src", api)):
        sources = directives.get(name, "").split()
        if source not in sources:
            sources.append(source)
        directives[name] = " ".join(sources)
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


def setup(app: web.Application, settings: Settings) -> None:
    client = WebClient(WEBCLIENT, settings.issuer)
    me_policy = with_payment_provider(client.page_headers["Content-Security-Policy"], settings)

    async def me_page(request: web.Request) -> web.FileResponse:
        response = await client.me_page(request)
        response.headers["Content-Security-Policy"] = me_policy
        return response

    app.router.add_get("/", client.console_page)
    app.router.add_get("/consult/{invite}", client.patient_page)
    app.router.add_get("/me/{pharmacy}", me_page)
    app.router.add_get("/app/{path:.+}", client.asset)
