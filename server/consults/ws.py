"""``/ws/consult``: the signaling WebSocket of a video consult (docs/signaling.md).

Thin by design: it checks the ``Origin`` before upgrading, waits for the ``join``, verifies a
pharmacist's access token (the patient's invite and anyone's resume token are the rooms'
business), then feeds decoded, rate-limited messages to :mod:`signaling.rooms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMessage, WSMsgType, web
from authlib.oauth2.rfc6749.errors import OAuth2Error

from signaling import protocol
from signaling.consults import ConsultError
from signaling.participant import Participant, RateLimit
from signaling.ports import PharmacistId
from signaling.rooms import Rooms

from ..auth.oauth import OAUTH
from ..errors import Forbidden, own_errors, problem_for
from ..http import PROXIES
from ..settings import SETTINGS
from .frames import DELIVERED, Inbox, SignalingSocket

log = logging.getLogger(__name__)

SCOPE = "consults"
#: the first message must come this soon
JOIN_TIMEOUT = 10.0
#: WebSocket pings after this long without a frame, so dead peers and idle proxies are noticed
PING_AFTER = 20.0
#: the heartbeat's sweep (of every open socket: about half a millisecond for 10,000)
BEAT = 1.0
#: pings written between two turns of the loop
PINGS_AT_ONCE = 64
#: the longest a ping waits for a peer that stopped reading
PING_WAIT = 0.1
#: refusals of a socket's messages (rate, size, shape) before it is closed
STRIKES = 20
CLOSE_POLICY = 1008


class SocketConnection:
    """:class:`signaling.ports.Connection` over an aiohttp WebSocket, and what the
    :class:`Heartbeat` knows of it: when a frame last came, when it was pinged."""

    __slots__ = ("_transport", "_ws", "pinged", "seen")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, now: float) -> None:
        self._ws = ws
        self._transport = transport
        self.seen = now
        #: when the unanswered ping went (0: none)
        self.pinged = 0.0

    async def send(self, text: str) -> None:
        await self._ws.send_str(text)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode())

    async def ping(self) -> None:
        await self._ws.ping()

    def abort(self) -> None:
        """A peer that does not answer: the connection is dropped, as aiohttp's own
        heartbeat does (the handler then sees the socket closed): at once, without waiting
        for a write buffer that a dead peer will never drain."""
        self._transport.abort()


class Heartbeat:
    """WebSocket pings for every open consult socket from one timer: a socket silent for
    ``interval`` seconds is pinged, and dropped if nothing comes within half of that.

    aiohttp's own (``heartbeat=``) costs each socket a timer handle kept armed and a pong
    timer per ping (~2 KB of a socket's memory once it has been pinged); a sweep every
    :data:`BEAT` seconds costs one timer for all of them, and a socket may wait up to that
    much longer for its ping or its drop. The sockets a sweep finds silent are pinged by one
    task, :data:`PINGS_AT_ONCE` at a time with the loop let go between them: thousands of
    sockets opened together fall silent together, and a task each (or pings in one go) would
    hold the loop for tens of milliseconds while other consults' messages wait."""

    def __init__(self, interval: float = PING_AFTER) -> None:
        self._interval = interval
        self._sockets: set[SocketConnection] = set()
        self._pings: set[asyncio.Task[None]] = set()

    @property
    def period(self) -> float:
        """How often :meth:`beat` should run (a supervised loop of the hub runs it)."""
        return min(BEAT, self._interval / 4)

    def add(self, socket: SocketConnection) -> None:
        self._sockets.add(socket)

    def discard(self, socket: SocketConnection) -> None:
        self._sockets.discard(socket)

    async def stop(self) -> None:
        for task in self._pings:
            task.cancel()
        await asyncio.gather(*self._pings, return_exceptions=True)

    def beat(self, now: float) -> None:
        """Ping the sockets silent for the interval, drop those that did not answer."""
        silent: list[SocketConnection] = []
        for socket in self._sockets:
            if socket.pinged:
                if now - socket.pinged >= self._interval / 2:
                    socket.abort()  # its handler takes it out of the set
            elif now - socket.seen >= self._interval:
                socket.pinged = now
                silent.append(socket)
        if silent:
            task = asyncio.get_running_loop().create_task(_ping(silent))
            self._pings.add(task)
            task.add_done_callback(self._pings.discard)


async def _ping(sockets: list[SocketConnection]) -> None:
    """Ping each socket, letting the loop go every :data:`PINGS_AT_ONCE`. A ping is a frame
    written to the socket's buffer: it waits only on a peer that stopped reading, and not
    for long (the ping is in its buffer; the next beats drop it if no answer comes); a socket
    closed meanwhile is its handler's business."""
    for index, socket in enumerate(sockets, 1):
        with contextlib.suppress(Exception):
            async with asyncio.timeout(PING_WAIT):
                await socket.ping()
        if index % PINGS_AT_ONCE == 0:
            await asyncio.sleep(0)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: web.Request) -> None:
    """Browsers send ``Origin`` on every upgrade: only the hub's own pages may connect (a
    page elsewhere cannot ride on a pharmacist's token or a patient's link)."""
    allowed = _origin(request.app[SETTINGS].issuer)
    if (request.headers.get("Origin") or "").lower() != allowed:
        raise Forbidden("WebSocket connections are accepted from the hub's own pages only.")


@own_errors
async def consult_socket(request: web.Request) -> web.StreamResponse:
    """One signaling socket for its whole life. Its failures before the upgrade are problem
    documents as elsewhere (:func:`own_errors`: no middleware frame is held per socket);
    the messages are served here rather than in a function of their own for the same
    reason, a frame less for each open socket."""
    try:
        check_origin(request)
        # no permessage-deflate: signaling messages are small, and each compressor would
        # cost a socket hundreds of KB (browsers ask for it); the hub's heartbeat, not
        # aiohttp's, pings (pings and pongs come here); a page's close is answered once its
        # seat is let go (below), so a page that saw its socket close may resume at once
        ws = SignalingSocket(
            max_msg_size=protocol.MAX_MESSAGE_BYTES,
            compress=False,
            autoping=False,
            autoclose=False,
        )
        await ws.prepare(request)
    except Exception as exc:
        return problem_for(request, exc)
    heartbeat, rooms = request.app[HEARTBEAT], request.app[ROOMS]
    loop = asyncio.get_running_loop()
    assert request.transport is not None  # (prepare raised otherwise)
    connection = SocketConnection(ws, request.transport, loop.time())
    heartbeat.add(connection)
    try:
        participant = await _enter(request, ws, connection, rooms)
        if participant is None:
            return ws
        seated = _Seated(ws, connection, rooms, participant, request.protocol)
        try:
            await seated.listen()
        finally:
            await seated.close()
            await rooms.closed(participant)
            await ws.close()
    finally:
        heartbeat.discard(connection)
    return ws


#: what a seated socket's inbox is told when it refused too many messages
_TOO_MANY = object()


class _Seated:
    """A seated socket's frames (:mod:`server.consults.frames`): each decoded and
    rate-limited as the parser reads it, then served in order by the socket's inbox."""

    __slots__ = ("_connection", "_inbox", "_limit", "_participant", "_rooms", "_strikes", "_ws")

    def __init__(
        self,
        ws: SignalingSocket,
        connection: SocketConnection,
        rooms: Rooms,
        participant: Participant,
        reading: Any,
    ) -> None:
        self._ws, self._connection, self._rooms = ws, connection, rooms
        self._participant = participant
        self._limit, self._strikes = RateLimit(), 0
        self._inbox = Inbox(self._serve, reading)

    async def listen(self) -> None:
        """Until the socket closes: the frames that came while it was seated first, then
        the listener; what still reaches ``receive()`` is the close or the socket's end."""
        ws, frames = self._ws, self._ws.frames
        while frames.buffered:
            frame = await ws.receive()
            if frame.type not in DELIVERED:
                return
            self.frame(frame)
        frames.listen(self.frame)
        try:
            async for frame in ws:  # only a socket error now: aiohttp has closed the socket
                log.debug("a consult socket failed: %s", type(frame.data).__name__)
        finally:
            frames.listen(None)

    async def close(self) -> None:
        await self._inbox.close()

    def frame(self, frame: WSMessage) -> None:
        """One frame, from the parser (so never raising into it)."""
        connection = self._connection
        connection.seen, connection.pinged = asyncio.get_running_loop().time(), 0.0
        if self._strikes >= STRIKES:
            return  # being closed
        try:
            if frame.type is WSMsgType.PING:
                self._inbox.put(frame)
            elif frame.type is WSMsgType.TEXT or frame.type is WSMsgType.BINARY:
                self._message(frame)
        except Exception:
            log.exception("a consult frame could not be read")
            connection.abort()

    def _message(self, frame: WSMessage) -> None:
        try:
            if frame.type is WSMsgType.BINARY:
                raise protocol.ProtocolError("not_text", "Messages are JSON text.")
            if not self._limit.allow():
                raise protocol.ProtocolError("rate_limited", "Too many messages; slow down.")
            message = protocol.decode(frame.data)
        except protocol.ProtocolError as refused:
            self._participant.send(protocol.Error(code=refused.code, message=refused.detail[:500]))
            self._refused()
        else:
            self._inbox.put(message)

    def _refused(self) -> None:
        self._strikes += 1
        if self._strikes == STRIKES:
            self._inbox.put(_TOO_MANY)

    async def _serve(self, item: object) -> None:
        if item is _TOO_MANY:
            await self._participant.close(CLOSE_POLICY, "too many refused messages", "refused")
        elif isinstance(item, WSMessage):  # a ping
            with contextlib.suppress(ConnectionError):
                await self._ws.pong(item.data)
        elif not await _handle(self._rooms, self._participant, item):  # type: ignore[arg-type]
            self._refused()


async def _enter(
    request: web.Request, ws: web.WebSocketResponse, connection: SocketConnection, rooms: Rooms
) -> Participant | None:
    """The socket's ``join``, seated; None when it was refused (and told why)."""
    ip = request.app[PROXIES].client_ip(request)
    try:
        join = await _join(ws, connection)
        pharmacist = await _pharmacist(request, join, ip)
        return await rooms.enter(join, connection, pharmacist, ip)
    except (protocol.ProtocolError, ConsultError) as refused:
        await _refuse(ws, refused.code, str(refused))
    except Exception:  # the database or the bus: the page may try again
        log.exception("a consult join failed")
        await _refuse(ws, "unavailable", "The consult cannot be joined now; try again.")
    return None


async def _join(ws: web.WebSocketResponse, connection: SocketConnection) -> protocol.Join:
    """The first message, which must be ``join`` (a ping before it is answered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOIN_TIMEOUT
    while True:
        try:
            first = await asyncio.wait_for(ws.receive(), deadline - loop.time())
        except TimeoutError:
            raise protocol.ProtocolError("join_timeout", "Send join first.") from None
        connection.seen, connection.pinged = loop.time(), 0.0
        if first.type is WSMsgType.PING:
            await ws.pong(first.data)
        elif first.type is not WSMsgType.PONG:
            break
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
    sign-in and the pharmacist role; else the join is refused. The socket's authority is that
    sign-in's from then on (the rooms re-check it), not the access token's, which the console
    replaces every few minutes."""
    if join.access_token is None:
        return None
    oauth = request.app[OAUTH]
    try:
        token = oauth.verify(f"Bearer {join.access_token}", SCOPE)
    except OAuth2Error:
        raise ConsultError("unauthorized", "The access token is not valid.") from None
    user = await oauth.flows.live_user(token)
    if user is None or user.role != "pharmacist" or token.family is None:
        raise ConsultError("unauthorized", "Only a signed-in pharmacist may join this way.")
    return PharmacistId(str(user.id), token.family, ip)


async def _refuse(ws: web.WebSocketResponse, code: str, message: str) -> None:
    with contextlib.suppress(ConnectionError):  # the page may be gone already
        await ws.send_str(protocol.encode(protocol.Error(code=code, message=message[:500])))
    await ws.close(code=CLOSE_POLICY, message=code.encode())


async def _handle(rooms: Rooms, participant: Participant, message: protocol.Message) -> bool:
    """One message; a fault of the hub's (database, bus) is answered, not fatal to the socket."""
    try:
        return await rooms.handle(participant, message)
    except Exception:
        log.exception("a consult message could not be handled")
        participant.send(protocol.Error(code="unavailable", message="Not done; try again."))
        return False


#: the live consults of this process (their sockets, bus subscriptions, recording peers)
ROOMS: web.AppKey[Rooms] = web.AppKey("rooms")
#: the pings of this process's consult sockets
HEARTBEAT: web.AppKey[Heartbeat] = web.AppKey("heartbeat")
