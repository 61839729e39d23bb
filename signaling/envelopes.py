"""What a consult's hub processes tell each other over :mod:`signaling.bus`: typed envelopes.

Each side of a consult has a channel, ``consult:<id>:<role>``; a process recording the consult
follows ``consult:<id>:hub``. An envelope on a channel is one of the frozen values below,
written as a small JSON object whose ``k`` names its kind (the wire form docs/signaling.md
describes, unchanged by these types):

- ``m`` (:class:`Relay`): a protocol message for that side's socket (relayed offer, answer,
  ICE, ``admitted``), already encoded;
- ``hello`` / ``bye`` (:class:`Hello`, :class:`Bye`): the other side came or went (a ``hello``
  is answered once, so the newcomer learns who was there first);
- ``state`` (:class:`State`): the consult changed (its revision, state, whether recording is
  allowed);
- ``kick`` (:class:`Kick`): a newer socket of this side (by seat generation) took over.

:func:`encode` and :func:`decode` are the only way out and in. An envelope of a kind this
process does not know (a newer hub's, during a rolling restart) decodes to None and is ignored;
a malformed one raises :class:`EnvelopeError`, which the bus logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .bus import Bus
from .consults import ConsultState

T = TypeVar("T")


class EnvelopeError(ValueError):
    """An envelope that is not one (a bug or a foreign publisher on the channel)."""


def channel(consult_id: str, role: str) -> str:
    """The channel of one side (``pharmacist``, ``patient``) of a consult, or its ``hub``."""
    return f"consult:{consult_id}:{role}"


@dataclass(frozen=True, slots=True)
class Relay:
    kind: ClassVar[str] = "m"
    #: a protocol message, encoded (it goes to the socket as it is)
    message: str

    def body(self) -> dict[str, Any]:
        return {"m": self.message}


@dataclass(frozen=True, slots=True)
class Hello:
    kind: ClassVar[str] = "hello"
    role: str
    #: an answer to the other side's hello (which is not answered again)
    reply: bool

    def body(self) -> dict[str, Any]:
        return {"role": self.role, "reply": self.reply}


@dataclass(frozen=True, slots=True)
class Bye:
    kind: ClassVar[str] = "bye"
    role: str

    def body(self) -> dict[str, Any]:
        return {"role": self.role}


@dataclass(frozen=True, slots=True)
class State:
    kind: ClassVar[str] = "state"
    revision: int
    state: ConsultState
    recording: bool

    def body(self) -> dict[str, Any]:
        return {"revision": self.revision, "state": self.state.value, "recording": self.recording}


@dataclass(frozen=True, slots=True)
class Kick:
    kind: ClassVar[str] = "kick"
    generation: int

    def body(self) -> dict[str, Any]:
        return {"generation": self.generation}


Envelope = Relay | Hello | Bye | State | Kick


def encode(envelope: Envelope) -> str:
    return json.dumps({"k": envelope.kind, **envelope.body()}, separators=(",", ":"))


def _field(body: dict[str, Any], key: str, kind: type[T]) -> T:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EnvelopeError(f"{key} must be {kind.__name__}")
    return value


def _state(body: dict[str, Any]) -> State:
    try:
        state = ConsultState(_field(body, "state", str))
    except ValueError:
        raise EnvelopeError("state must be a consult state") from None
    return State(_field(body, "revision", int), state, _field(body, "recording", bool))


_DECODERS: dict[str, Callable[[dict[str, Any]], Envelope]] = {
    Relay.kind: lambda body: Relay(_field(body, "m", str)),
    Hello.kind: lambda body: Hello(_field(body, "role", str), _field(body, "reply", bool)),
    Bye.kind: lambda body: Bye(_field(body, "role", str)),
    State.kind: _state,
    Kick.kind: lambda body: Kick(_field(body, "generation", int)),
}


def decode(data: str) -> Envelope | None:
    """The envelope in ``data``; None for a kind this process does not know."""
    try:
        body = json.loads(data)
    except ValueError:
        raise EnvelopeError("an envelope is JSON") from None
    if not isinstance(body, dict):
        raise EnvelopeError("an envelope is a JSON object")
    kind = body.get("k")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    return decoder(body) if decoder is not None else None


async def publish(bus: Bus, consult_id: str, role: str, envelope: Envelope) -> None:
    """``envelope`` on the channel of ``role`` in the consult, for whichever process has it."""
    await bus.publish(channel(consult_id, role), encode(envelope))
