"""Typed application keys: the only way state is hung on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from signaling.rooms import Rooms

    from .auth.credentials import SecretBox
    from .auth.oauth import OAuthService
    from .auth.sessions import Sessions
    from .background import Supervisor
    from .consults.ws import Heartbeat
    from .db import Database
    from .http import ProxyTrust
    from .intake.service import IntakeService
    from .settings import Settings
    from .worker.publisher import CheckQueue

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
OAUTH: web.AppKey[OAuthService] = web.AppKey("oauth")
INTAKE: web.AppKey[IntakeService] = web.AppKey("intake")
PROXIES: web.AppKey[ProxyTrust] = web.AppKey("proxies")
CHECK_QUEUE: web.AppKey[CheckQueue] = web.AppKey("check_queue")
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")
SECRETS: web.AppKey[SecretBox] = web.AppKey("secrets")
#: the live consults of this process (their sockets, bus subscriptions, recording peers)
ROOMS: web.AppKey[Rooms] = web.AppKey("rooms")
#: the pings of this process's consult sockets
HEARTBEAT: web.AppKey[Heartbeat] = web.AppKey("heartbeat")

#: the background loops of this process (sweep, log flush, consult heartbeat ...)
BACKGROUND: web.AppKey[Supervisor] = web.AppKey("background")

#: the authenticated OAuth client of a request, for the access log
CLIENT_ID: web.RequestKey[str] = web.RequestKey("client_id", str)
