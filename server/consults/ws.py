"""``/ws/consult``: the signaling WebSocket of a video consult (docs/signaling.md).

Thin by design: it checks the ``Origin`` before upgrading, waits for the ``join``, verifies a
pharmacist's access token (the patient's invite and anyone's resume token are the rooms'
business), then feeds decoded, rate-limited messages to :mod:`signaling.rooms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from authlib.oauth2.rfc6749.errors import OAuth2Error

from signaling import protocol
from signaling.consults import ConsultError
from signaling.rooms import Participant, PharmacistId, RateLimit, Rooms

from ..errors import Forbidden
from ..typedefs import OAUTH, PROXIES, ROOMS, SETTINGS

log = logging.getLogger(__name__)

SCOPE = "consults"
#: the first message must come this soon
JOIN_TIMEOUT = 10.0
#: WebSocket pings, so dead peers and idle proxies are noticed
HEARTBEAT = 20.0
#: refusals of a socket's messages (rate, size, shape) before it is closed
STRIKES = 20
CLOSE_POLICY = 1008


class SocketConnection:
    """:class:`signaling.rooms.Connection` over an aiohttp WebSocket."""

    __slots__ = ("_ws",)

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        await self._ws.send_str(text)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: web.Request) -> None:
    """Browsers send ``Origin`` on every upgrade: only the hub's own pages may connect (a
    page elsewhere cannot ride on a pharmacist's token or a patient's link)."""
    allowed = _origin(request.app[SETTINGS].issuer)
    if (request.headers.get("Origin") or "").lower() != allowed:
        raise Forbidden("WebSocket connections are accepted from the hub's own pages only.")


async def consult_socket(request: web.Request) -> web.StreamResponse:
    check_origin(request)
    # no permessage-deflate: signaling messages are small, and each compressor would cost
    # a socket hundreds of KB (browsers ask for it)
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT, max_msg_size=protocol.MAX_MESSAGE_BYTES, compress=False
    )
    await ws.prepare(request)
    rooms = request.app[ROOMS]
    connection = SocketConnection(ws)
    ip = request.app[PROXIES].client_ip(request)
    try:
        join = await _join(ws)
        pharmacist = await _pharmacist(request, join, ip)
        participant = await rooms.enter(join, connection, pharmacist, ip)
        del join  # an open socket keeps no credentials
    except (protocol.ProtocolError, ConsultError) as refused:
        await _refuse(ws, refused.code, str(refused))
        return ws
    except Exception:  # the database or the bus: the page may try again
        log.exception("a consult join failed")
        await _refuse(ws, "unavailable", "The consult cannot be joined now; try again.")
        return ws
    try:
        await _serve(ws, rooms, participant)
    finally:
        await rooms.closed(participant)
    return ws


async def _join(ws: web.WebSocketResponse) -> protocol.Join:
    try:
        first = await asyncio.wait_for(ws.receive(), JOIN_TIMEOUT)
    except TimeoutError:
        raise protocol.ProtocolError("join_timeout", "Send join first.") from None
    if first.type is not WSMsgType.TEXT:
        raise protocol.ProtocolError("join_required", "Send join first.")
    message = protocol.decode(first.data)
    if not isinstance(message, protocol.Join):
        raise protocol.ProtocolError("join_required", "Send join first.")
    return message


async def _pharmacist(
    request: web.Request, join: protocol.Join, ip: str | None
) -> PharmacistId | None:
    """The pharmacist behind ``join.access_token``: valid, with scope ``consults``, a live
    sign-in and the pharmacist role; else the join is refused."""
    if join.access_token is None:
        return None
    oauth = request.app[OAUTH]
    try:
        token = oauth.verify(f"Bearer {join.access_token}", SCOPE)
    except OAuth2Error:
        raise ConsultError("unauthorized", "The access token is not valid.") from None
    user = await oauth.flows.live_user(token)
    if user is None or user.role != "pharmacist":
        raise ConsultError("unauthorized", "Only a signed-in pharmacist may join this way.")
    return PharmacistId(str(user.id), ip)


async def _refuse(ws: web.WebSocketResponse, code: str, message: str) -> None:
    with contextlib.suppress(ConnectionError):  # the page may be gone already
        await ws.send_str(protocol.encode(protocol.Error(code=code, message=message[:500])))
    await ws.close(code=CLOSE_POLICY, message=code.encode())


async def _serve(ws: web.WebSocketResponse, rooms: Rooms, participant: Participant) -> None:
    limit, strikes = RateLimit(), 0
    async for frame in ws:
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue  # close, ping and socket errors are aiohttp's
        try:
            if frame.type is WSMsgType.BINARY:
                raise protocol.ProtocolError("not_text", "Messages are JSON text.")
            if not limit.allow():
                raise protocol.ProtocolError("rate_limited", "Too many messages; slow down.")
            message = protocol.decode(frame.data)
        except protocol.ProtocolError as refused:
            participant.send(protocol.Error(code=refused.code, message=refused.detail[:500]))
            accepted = False
        else:
            accepted = await _handle(rooms, participant, message)
        if not accepted:
            strikes += 1
            if strikes >= STRIKES:
                await participant.close(CLOSE_POLICY, "too many refused messages", "refused")
                return


async def _handle(rooms: Rooms, participant: Participant, message: protocol.Message) -> bool:
    """One message; a fault of the hub's (database, bus) is answered, not fatal to the socket."""
    try:
        return await rooms.handle(participant, message)
    except Exception:
        log.exception("a consult message could not be handled")
        participant.send(protocol.Error(code="unavailable", message="Not done; try again."))
        return False
