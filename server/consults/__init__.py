"""Video consults on the hub: the live rooms, their bus, TURN credentials, the signaling
WebSocket, and the ``/api/v1`` operations that schedule, read and cancel consults (:mod:`.http`).
The rules are :mod:`signaling`; this package wires them to the database, Redis and aiohttp."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from signaling import turn
from signaling.bus import create_bus
from signaling.ports import IceFor
from signaling.recording import Recorders
from signaling.recording_store import EncryptedRecordingStore
from signaling.rooms import Rooms

from ..auth.credentials import load_key
from ..background import BACKGROUND
from ..db import DATABASE
from ..db.models import utcnow
from ..metrics import OBSERVER
from ..settings import SETTINGS, Settings
from . import http
from .store import SqlConsultStore
from .ws import HEARTBEAT, ROOMS, Heartbeat, consult_socket


def ice_for(settings: Settings) -> IceFor:
    """The ICE servers a participant gets on admission: STUN as configured, TURN with
    credentials minted for this consult (none configured: host candidates only)."""

    def servers(consult_id: str, role: str) -> tuple[dict[str, Any], ...]:
        found = turn.ice_servers(settings.turn_urls, settings.turn_secret, consult_id, utcnow())
        return tuple(server.to_json() for server in found)

    return servers


RECORDINGS_KEY = "recordings.key"


def recorders(settings: Settings) -> Recorders | None:
    """The recording peers, writing under ``<data dir>/recordings`` with their own key (none
    when ``max_recordings`` is 0)."""
    if settings.max_recordings == 0:
        return None
    key = load_key(settings.keys_dir / RECORDINGS_KEY)
    store = EncryptedRecordingStore(settings.data_dir / "recordings", key)
    return Recorders(store, max_active=settings.max_recordings)


async def _rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    bus = create_bus(settings.redis_url)
    rooms = Rooms(
        SqlConsultStore(app[DATABASE]),
        bus,
        ice_for(settings),
        recorders=await asyncio.to_thread(recorders, settings),
        grace=settings.consult_grace,
        recheck=settings.consult_recheck,
        observer=app[OBSERVER],
    )
    app[ROOMS] = rooms
    app[HEARTBEAT] = heartbeat = Heartbeat()
    loops = app[BACKGROUND]
    loop = asyncio.get_running_loop()
    async with (
        loops.every("consult_heartbeat", heartbeat.period, lambda: heartbeat.beat(loop.time())),
        loops.every("consult_housekeeping", rooms.housekeeping_period, rooms.housekeeping),
    ):
        yield
    await heartbeat.stop()
    await rooms.close()
    await bus.close()


async def _on_shutdown(app: web.Application) -> None:
    # before aiohttp waits for the handlers: the open sockets are told and let go at once
    await app[ROOMS].shutdown()


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(_rooms_ctx)
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/ws/consult", consult_socket)
    app.router.add_get("/api/v1/consults", http.list_consults)
    app.router.add_post("/api/v1/consults", http.create_consult)
    app.router.add_post("/api/v1/invites/check", http.check_invite)
    app.router.add_get("/api/v1/consults/{id}", http.get_consult)
    app.router.add_post("/api/v1/consults/{id}/cancel", http.cancel_consult)
