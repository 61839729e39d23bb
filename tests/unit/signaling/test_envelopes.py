"""The bus envelopes between hub processes: typed both ways, in the wire form of
docs/signaling.md, and tolerant of kinds a newer hub may add."""

from __future__ import annotations

import json

import pytest

from signaling.consults import ConsultState
from signaling.envelopes import (
    Bye,
    Envelope,
    EnvelopeError,
    Hello,
    Kick,
    Relay,
    State,
    decode,
    encode,
)

SAMPLES = [
    (Relay('{"type":"pong"}'), {"k": "m", "m": '{"type":"pong"}'}),
    (Hello("patient", reply=False), {"k": "hello", "role": "patient", "reply": False}),
    (Bye("pharmacist"), {"k": "bye", "role": "pharmacist"}),
    (
        State(7, ConsultState.IN_CALL, recording=True),
        {"k": "state", "revision": 7, "state": "in_call", "recording": True},
    ),
    (Kick(3), {"k": "kick", "generation": 3}),
]


@pytest.mark.parametrize(("envelope", "wire"), SAMPLES)
def test_round_trip_in_the_documented_wire_form(
    envelope: Envelope, wire: dict[str, object]
) -> None:
    assert json.loads(encode(envelope)) == wire
    assert decode(json.dumps(wire)) == envelope


def test_a_kind_this_process_does_not_know_is_ignored() -> None:
    assert decode('{"k": "later", "x": 1}') is None


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[1]",
        '{"k": "kick", "generation": true}',
        '{"k": "kick"}',
        '{"k": "state", "revision": 1, "state": "lost", "recording": false}',
        '{"k": "hello", "role": "patient", "reply": "no"}',
    ],
)
def test_malformed_envelopes_are_refused(data: str) -> None:
    with pytest.raises(EnvelopeError):
        decode(data)
