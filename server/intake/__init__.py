"""``POST /ncpdp/script``: the prescribers' systems' door into the hub."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from eprescribe.ncpdp import SenderSoftware

from .. import auth
from ..db import DATABASE
from ..http import PROXIES, read_body, require_content_type
from ..logs import CLIENT_ID
from ..metrics import OBSERVER
from ..notifications import TRIGGERS
from ..outbox import DELIVER
from ..settings import SETTINGS, Settings
from ..worker import CHECK_QUEUE
from .service import IntakeService, Sender

XML_TYPES = ("application/xml", "text/xml")
SCOPE = "script:send"


async def script_endpoint(request: web.Request) -> web.Response:
    """Authenticate, bound and type-check the body, then let the intake answer in SCRIPT."""
    token = auth.require(request, SCOPE)
    request[CLIENT_ID] = token.client_id
    require_content_type(request, XML_TYPES)
    raw = await read_body(request, request.app[SETTINGS].max_message_bytes)
    sender = Sender(token.client_id, request.app[PROXIES].client_ip(request))
    reply = await request.app[INTAKE].receive(raw, sender)
    if not reply:  # a Status, Error or Verify the hub could not take: no SCRIPT answer
        return web.Response()
    return web.Response(body=reply, content_type="application/xml", charset="utf-8")


async def _intake_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    software = SenderSoftware("Telepharm", "Telepharm Hub", settings.software_version)
    service = IntakeService(
        app[DATABASE],
        software,
        settings.pharmacy_cache_ttl,
        on_stored=app[CHECK_QUEUE].submit,
        store_timeout=settings.store_timeout,
        deliver=app.get(DELIVER),
        notify=app.get(TRIGGERS),
        observer=app[OBSERVER],
    )
    app[INTAKE] = service
    yield
    await service.close()


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(_intake_ctx)
    app.router.add_post("/ncpdp/script", script_endpoint)


#: the intake service behind POST /ncpdp/script
INTAKE: web.AppKey[IntakeService] = web.AppKey("intake")
