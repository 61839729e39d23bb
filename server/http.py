"""Small HTTP helpers shared by the features: bounded body reads, JSON bodies (read into and
written from the API's typed bodies) and the caller's address."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import ipaddress
import uuid
import zlib
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec
from aiohttp import hdrs, web

from .errors import BadRequest, NotFound, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from .settings import SETTINGS, Settings

CHUNK = 64 * 1024
#: what every response names as its server: no software or version for a scanner to match
SERVER_NAME = "Telepharm"
#: routes whose answers carry patient data, SCRIPT messages or credentials (OWASP ASVS 8.2.1)
_NO_STORE_PREFIXES = ("/api/", "/ncpdp/", "/oauth/")
#: addresses whose trust ProxyTrust remembers (forgotten all at once beyond this)
_KNOWN_PEERS = 4096
T = TypeVar("T")
_ENCODER = msgspec.json.Encoder()
#: decoders by body type; the types are classes declared at import, so this stays small
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


#: Content-Encodings a body may come in; gzip is decoded here, within the same size limit
_GZIP = frozenset({"gzip", "x-gzip"})
_ENCODINGS = _GZIP | {"identity"}


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, decoded: 413 over ``limit`` bytes (encoded or decoded, never buffering
    more), 415 for an encoding other than gzip, 408 when it has not all arrived within the
    body deadline (``Settings.body_timeout``: a slow sender must not hold a connection)."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in _ENCODINGS:
        raise UnsupportedMediaType("Send the body unencoded or gzip-encoded.")
    if request.content.is_eof():  # all here already (the usual small body): nothing to time
        raw = await _read_raw(request, limit)
    else:
        try:
            async with asyncio.timeout(request.app[SETTINGS].body_timeout):
                raw = await _read_raw(request, limit)
        except TimeoutError:
            raise RequestTimeout("The body did not arrive in time.") from None
    return _gunzip(raw, limit) if encoding in _GZIP else raw


async def _read_raw(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None:
        if length > limit:
            raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
        # the parser delivers at most Content-Length bytes: read them at once, not in a loop
        try:
            return await request.content.readexactly(length) if length else b""
        except asyncio.IncompleteReadError as exc:  # the body ended early: what came, as before
            return exc.partial
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    """One gzip member, inflated no further than ``limit`` + 1 bytes: a small bomb cannot make
    the hub allocate what it expands to (the app turns aiohttp's own decoding off for this)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise BadRequest("The body is not valid gzip.") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes once decoded.")
    if not inflater.eof or inflater.unused_data:
        raise BadRequest("The body is not one complete gzip stream.")
    return body


def query_int(request: web.Request, name: str, default: int, maximum: int) -> int:
    """A whole-number query parameter from 0 to ``maximum``; 400 otherwise (the value is never
    echoed or logged). ASCII digits only: ``str.isdigit()`` also takes "²", which ``int()``
    refuses, and Arabic-Indic "5" (U+0665), which it reads as 5."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (0 < len(raw) <= len(str(maximum)) and raw.isascii() and raw.isdigit()):
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}.")
    value = int(raw)
    if value > maximum:
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}.")
    return value


def keyset_cursor(urgent: bool | None, at: dt.datetime, key: uuid.UUID) -> str:
    """An opaque cursor for a keyset page that ended at the row (``urgent``, ``at``,
    ``key``): the position of its last row in the list's order, not a count, so rows added or
    moved meanwhile are neither skipped nor shown twice."""
    flag = "" if urgent is None else ("1" if urgent else "0")
    raw = f"{flag}|{at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def query_cursor(
    request: web.Request, name: str = "cursor"
) -> tuple[bool | None, dt.datetime, uuid.UUID] | None:
    """The position a :func:`keyset_cursor` names; 400 for anything this API did not give."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if len(raw) > 200:
            raise ValueError
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        flag, at, key = text.split("|")
        if flag not in ("", "0", "1"):
            raise ValueError
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError
        return (None if flag == "" else flag == "1"), when, uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(f"{name} is not a cursor this API gave.") from None


def setup(app: web.Application, settings: Settings) -> None:
    """Headers every response carries, and which peers may speak for a client."""
    app.on_response_prepare.append(response_headers)
    app[PROXIES] = ProxyTrust(settings.trusted_proxies)


async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response gets, set in one place (``on_response_prepare``, so error
    documents too): no caching of private answers, and a ``Server`` without aiohttp's version
    (aiohttp adds its own only where none is set)."""
    response.headers[hdrs.SERVER] = SERVER_NAME
    if request.path.startswith(_NO_STORE_PREFIXES):
        response.headers[hdrs.CACHE_CONTROL] = "no-store"


def cursor_of(at: dt.datetime, key: uuid.UUID) -> str:
    """A keyset page's cursor: the last item's moment and ID, opaque to clients."""
    raw = f"{at.astimezone(dt.UTC).isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_after(request: web.Request) -> tuple[dt.datetime, uuid.UUID] | None:
    """The ``after`` query parameter read back (400 for one this API did not give)."""
    raw = request.query.get("after")
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, key = text.split("|")
        return dt.datetime.fromisoformat(at), uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("after is not a cursor this API gave.") from None


def path_uuid(request: web.Request, what: str) -> uuid.UUID:
    """The ``{id}`` of the route as a UUID; anything else is a resource that does not exist."""
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound(f"No such {what}.") from None


async def read_json_as(request: web.Request, body_type: type[T], limit: int) -> T:
    """The JSON body as ``body_type`` (an empty body is ``{}``): 415, 413, or 400 with
    msgspec's account of the first problem, which names the member (e.g. "Object contains
    unknown field `x`", "Expected `str`, got `int` - at `$.invite`")."""
    require_content_type(request, ("application/json",))
    raw = await read_body(request, limit)
    try:
        return _decoder(body_type).decode(raw or b"{}")
    except msgspec.ValidationError as exc:
        raise BadRequest(f"The body is not valid: {exc}.") from None
    except msgspec.DecodeError:
        raise BadRequest("The body is not valid JSON.") from None


def _decoder(body_type: type[T]) -> msgspec.json.Decoder[T]:
    """One decoder per body type (building one walks the type)."""
    decoder = _DECODERS.get(body_type)
    if decoder is None:
        decoder = _DECODERS[body_type] = msgspec.json.Decoder(body_type)
    return decoder


def respond(body: msgspec.Struct) -> web.Response:
    """A 200 ``application/json`` response with ``body`` encoded."""
    return web.Response(
        body=_ENCODER.encode(body), content_type="application/json", charset="utf-8"
    )


def require_content_type(request: web.Request, allowed: Iterable[str]) -> None:
    if request.content_type not in allowed:
        raise UnsupportedMediaType(f"Send the body as {' or '.join(allowed)}.")


class ProxyTrust:
    """Which peers may tell us the client's address in ``X-Forwarded-For``."""

    def __init__(self, proxies: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)
        #: answers by address: peers are few and parsing one costs more than the rest of this
        self._known: dict[str, bool] = {}

    def _trusted(self, address: str) -> bool:
        known = self._known.get(address)
        if known is None:
            known = self._check(address)
            if len(self._known) >= _KNOWN_PEERS:
                self._known.clear()
            self._known[address] = known
        return known

    def _check(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def client_ip(self, request: web.Request) -> str | None:
        """The nearest address not belonging to a trusted proxy (spoofed hops are ignored)."""
        remote = request.remote
        if not remote or not self._trusted(remote):
            return remote
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._trusted(hop):
                return hop[:45]
        return remote


#: which peers may name the client address (TELEPHARM_TRUSTED_PROXIES)
PROXIES: web.AppKey[ProxyTrust] = web.AppKey("proxies")
