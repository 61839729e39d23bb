"""The consult signaling protocol: JSON messages over a WebSocket, one codec.

Every message is a JSON object with a ``type`` and that type's fields, nothing else; each is a
frozen value object here, and :func:`decode` is the only way in: it bounds the size, parses,
and checks every field's type, length and range, raising :class:`ProtocolError` (whose
``code`` goes back to the sender in an ``error`` message). ICE candidate fields use the
browser's own names (``candidate``, ``sdpMid``, ``sdpMLineIndex``) so a page passes
``RTCIceCandidate.toJSON()`` through unchanged. The sequence of messages is documented in
docs/signaling.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .consults import ConsultState

#: a message, SDP included, is at most this many bytes on the wire
MAX_MESSAGE_BYTES = 64 * 1024
SDP_MAX = 60_000
#: the consult states a ``joined`` may report
STATES = tuple(state.value for state in ConsultState)


class ProtocolError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


Check = Callable[[str, Any], Any]


def _spec(check: Check, key: str | None = None, optional: bool = False) -> Any:
    metadata = {"check": check, "key": key, "optional": optional}
    return field(default=None, metadata=metadata) if optional else field(metadata=metadata)


def text(
    max_len: int, *, key: str | None = None, optional: bool = False, empty: bool = False
) -> Any:
    least = 0 if empty else 1

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not least <= len(value) <= max_len:
            raise ProtocolError(
                "bad_field", f"{name} must be text of {least} to {max_len} characters"
            )
        return value

    return _spec(check, key, optional)


def flag() -> Any:
    def check(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ProtocolError("bad_field", f"{name} must be true or false")
        return value

    return _spec(check)


def number(low: float, high: float, *, integer: bool = False, **kw: Any) -> Any:
    def check(name: str, value: Any) -> float | int:
        wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
        if wrong_type or (integer and not isinstance(value, int)):
            raise ProtocolError("bad_field", f"{name} must be a number")
        if not math.isfinite(value) or not low <= value <= high:
            raise ProtocolError("bad_field", f"{name} must be from {low} to {high}")
        return value

    return _spec(check, **kw)


def choice(*values: str) -> Any:
    def check(name: str, value: Any) -> str:
        if value not in values:
            raise ProtocolError("bad_field", f"{name} must be one of: {', '.join(values)}")
        return str(value)

    return _spec(check)


def servers() -> Any:
    def check(name: str, value: Any) -> tuple[dict[str, Any], ...]:
        if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
            raise ProtocolError("bad_field", f"{name} must be a list of ICE servers")
        return tuple(value)

    return _spec(check)


@dataclass(frozen=True, slots=True)
class Message:
    type: ClassVar[str]
    #: who may send it: "client" (browser to hub), "hub", or "relay" (client to hub to peer)
    direction: ClassVar[str]


# -- browser to hub -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join(Message):
    """The first message on a socket, with exactly one way in: a pharmacist's access token and
    the consult, a patient's invite with the telehealth consent text they agreed to, or the
    ``resume`` token of an earlier ``joined`` (after a dropped socket)."""

    type = "join"
    direction = "client"
    resume: str | None = text(128, optional=True)
    access_token: str | None = text(8192, optional=True)
    consult_id: str | None = text(64, optional=True)
    invite: str | None = text(128, optional=True)
    consent_version: str | None = text(40, optional=True)

    def __post_init__(self) -> None:
        ways = [self.resume, self.access_token, self.invite]
        if sum(way is not None for way in ways) != 1:
            raise ProtocolError("bad_join", "join with one of resume, access_token or invite")
        if (self.access_token is None) != (self.consult_id is None):
            raise ProtocolError("bad_join", "a pharmacist joins with access_token and consult_id")
        if self.consent_version is not None and self.invite is None:
            raise ProtocolError("bad_join", "consent_version goes with an invite")


@dataclass(frozen=True, slots=True)
class Admit(Message):
    type = "admit"
    direction = "client"


@dataclass(frozen=True, slots=True)
class RecordingConsent(Message):
    type = "recording_consent"
    direction = "client"
    consent: bool = flag()


@dataclass(frozen=True, slots=True)
class Stats(Message):
    """A getStats summary, every few seconds."""

    type = "stats"
    direction = "client"
    bitrate_kbps: float = number(0, 100_000)
    fps: float = number(0, 240)
    packet_loss: float = number(0, 100)  # percent
    rtt_ms: float = number(0, 60_000)


@dataclass(frozen=True, slots=True)
class Media(Message):
    """The page's peer connection to the other party connected or was lost (the hub carries
    no media, so the browsers say so): the consult is ``in_call`` while it is connected."""

    type = "media"
    direction = "client"
    connected: bool = flag()


@dataclass(frozen=True, slots=True)
class RecordOffer(Message):
    """While recording is active: the page's offer for a send-only connection to the hub's
    recorder (complete, candidates included: the recorder does not trickle)."""

    type = "record_offer"
    direction = "client"
    sdp: str = text(SDP_MAX)


@dataclass(frozen=True, slots=True)
class Leave(Message):
    type = "leave"
    direction = "client"


@dataclass(frozen=True, slots=True)
class End(Message):
    type = "end"
    direction = "client"
    notes: str = text(4000)
    counselling: str = choice("accepted", "refused")


@dataclass(frozen=True, slots=True)
class Ping(Message):
    type = "ping"
    direction = "client"


# -- relayed to the other party --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer(Message):
    type = "offer"
    direction = "relay"
    sdp: str = text(SDP_MAX)


@dataclass(frozen=True, slots=True)
class Answer(Message):
    type = "answer"
    direction = "relay"
    sdp: str = text(SDP_MAX)


@dataclass(frozen=True, slots=True)
class IceCandidate(Message):
    type = "ice"
    direction = "relay"
    #: empty in the end-of-candidates a browser's ``RTCIceCandidate.toJSON()`` gives
    candidate: str = text(2000, empty=True)
    sdp_mid: str | None = text(64, key="sdpMid", optional=True)
    sdp_mline_index: int | None = number(0, 64, integer=True, key="sdpMLineIndex", optional=True)
    #: browsers' RTCIceCandidate.toJSON() carries it (the ICE ufrag the candidate belongs to)
    username_fragment: str | None = text(256, key="usernameFragment", optional=True)


@dataclass(frozen=True, slots=True)
class Mute(Message):
    type = "mute"
    direction = "relay"
    audio: bool = flag()
    video: bool = flag()


# -- hub to browser ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Joined(Message):
    type = "joined"
    direction = "hub"
    consult_id: str = text(64)
    role: str = choice("pharmacist", "patient")
    resume: str = text(128)
    state: str = choice(*STATES)


@dataclass(frozen=True, slots=True)
class Waiting(Message):
    type = "waiting"
    direction = "hub"


@dataclass(frozen=True, slots=True)
class Admitted(Message):
    type = "admitted"
    direction = "hub"
    ice_servers: tuple[dict[str, Any], ...] = servers()


@dataclass(frozen=True, slots=True)
class PeerJoined(Message):
    type = "peer_joined"
    direction = "hub"
    role: str = choice("pharmacist", "patient")


@dataclass(frozen=True, slots=True)
class PeerLeft(Message):
    type = "peer_left"
    direction = "hub"
    role: str = choice("pharmacist", "patient")


@dataclass(frozen=True, slots=True)
class Recording(Message):
    type = "recording"
    direction = "hub"
    active: bool = flag()


@dataclass(frozen=True, slots=True)
class RecordAnswer(Message):
    type = "record_answer"
    direction = "hub"
    sdp: str = text(SDP_MAX)


@dataclass(frozen=True, slots=True)
class Quality(Message):
    """(to the pharmacist) a participant's latest getStats summary."""

    type = "quality"
    direction = "hub"
    role: str = choice("pharmacist", "patient")
    bitrate_kbps: float = number(0, 100_000)
    fps: float = number(0, 240)
    packet_loss: float = number(0, 100)
    rtt_ms: float = number(0, 60_000)


@dataclass(frozen=True, slots=True)
class Ended(Message):
    type = "ended"
    direction = "hub"


@dataclass(frozen=True, slots=True)
class Error(Message):
    type = "error"
    direction = "hub"
    code: str = text(64)
    message: str = text(500)


@dataclass(frozen=True, slots=True)
class Pong(Message):
    type = "pong"
    direction = "hub"


TYPES: dict[str, type[Message]] = {
    cls.type: cls
    for cls in (
        Join, Admit, RecordingConsent, Stats, Media, RecordOffer, Leave, End, Ping, Offer,
        Answer, IceCandidate, Mute, Joined, Waiting, Admitted, PeerJoined, PeerLeft, Recording,
        RecordAnswer, Quality, Ended, Error, Pong,
    )
}  # fmt: skip


def decode(raw: str | bytes) -> Message:
    """The message in ``raw``, validated; :class:`ProtocolError` otherwise."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"messages are at most {MAX_MESSAGE_BYTES} bytes")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is not a message
        raise ProtocolError("not_json", "the message is not JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", "a message is a JSON object")
    kind = obj.get("type")
    cls = TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError("unknown_type", "unknown message type")
    values: dict[str, Any] = {}
    keys = {"type"}
    for spec in dataclasses.fields(cls):
        key = spec.metadata["key"] or spec.name
        keys.add(key)
        if key not in obj or obj[key] is None:
            if spec.metadata["optional"]:
                values[spec.name] = None
                continue
            raise ProtocolError("bad_field", f"{key} is required")
        values[spec.name] = spec.metadata["check"](key, obj[key])
    extra = set(obj) - keys
    if extra:
        raise ProtocolError("bad_field", f"unknown fields: {', '.join(sorted(extra)[:5])}")
    return cls(**values)


def encode(message: Message) -> str:
    body: dict[str, Any] = {"type": message.type}
    for spec in dataclasses.fields(message):
        value = getattr(message, spec.name)
        body[spec.metadata["key"] or spec.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(body, separators=(",", ":"))
