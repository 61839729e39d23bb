"""The signaling codec: every message round-trips; anything else is a clear ProtocolError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.protocol import (
    MAX_MESSAGE_BYTES,
    TYPES,
    Admitted,
    End,
    IceCandidate,
    Join,
    Media,
    Message,
    Mute,
    Offer,
    ProtocolError,
    Quality,
    RecordOffer,
    Stats,
    decode,
    encode,
)

SAMPLES: list[Message] = [
    Join(resume="r" * 40),
    Join(access_token="eyJ.a.b", consult_id="c-1"),
    Join(invite="i" * 43, consent_version="telehealth-v1"),
    Media(connected=True),
    RecordOffer(sdp="v=0\r\n"),
    Quality(role="patient", bitrate_kbps=1.0, fps=2.0, packet_loss=0.0, rtt_ms=3.0),
    Offer(sdp="v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"),
    IceCandidate(candidate="candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host"),
    IceCandidate(
        candidate="candidate:2 1 udp 1 192.0.2.2 3478 typ relay", sdp_mid="0", sdp_mline_index=0
    ),
    Mute(audio=True, video=False),
    Stats(bitrate_kbps=512.5, fps=29.9, packet_loss=0.4, rtt_ms=42),
    End(notes="Counselled on timing of doses.", counselling="accepted"),
    Admitted(
        ice_servers=({"urls": ["turn:turn.example:3478"], "username": "u", "credential": "c"},)
    ),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.type)
def test_round_trip(message: Message) -> None:
    assert decode(encode(message)) == message


def test_ice_uses_the_browsers_field_names() -> None:
    wire = json.loads(encode(SAMPLES[8]))
    assert wire == {
        "type": "ice",
        "candidate": SAMPLES[8].candidate,  # type: ignore[attr-defined]
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": None,
    }


def test_ice_takes_what_a_browsers_candidate_to_json_gives() -> None:
    wire = {
        "type": "ice",
        "candidate": "candidate:1957976252 1 udp 2122194687 127.0.0.1 49422 typ host generation 0",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "IklC",
    }
    message = decode(json.dumps(wire))
    assert message.username_fragment == "IklC"  # type: ignore[attr-defined]
    assert json.loads(encode(message)) == wire


def test_every_type_has_a_unique_name_and_a_direction() -> None:
    assert len(TYPES) == 24
    assert {cls.direction for cls in TYPES.values()} == {"client", "relay", "hub"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "not_json"),
        ("[1, 2]", "not_object"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"sdp": "x"}', "unknown_type"),
        ('{"type": "offer"}', "bad_field"),
        ('{"type": "offer", "sdp": ""}', "bad_field"),
        ('{"type": "offer", "sdp": 42}', "bad_field"),
        ('{"type": "mute", "audio": 1, "video": false}', "bad_field"),
        (
            '{"type": "stats", "bitrate_kbps": -1, "fps": 1, "packet_loss": 0, "rtt_ms": 1}',
            "bad_field",
        ),
        (
            '{"type": "stats", "bitrate_kbps": true, "fps": 1, "packet_loss": 0, "rtt_ms": 1}',
            "bad_field",
        ),
        (
            '{"type": "stats", "bitrate_kbps": NaN, "fps": 1, "packet_loss": 0, "rtt_ms": 1}',
            "bad_field",
        ),
        ('{"type": "ice", "candidate": "c", "sdpMLineIndex": 1.5}', "bad_field"),
        ('{"type": "end", "notes": "n", "counselling": "maybe"}', "bad_field"),
        ('{"type": "leave", "extra": 1}', "bad_field"),
        ('{"type": "join"}', "bad_join"),
        ('{"type": "join", "resume": "r", "invite": "i"}', "bad_join"),
        ('{"type": "join", "access_token": "t"}', "bad_join"),
        ('{"type": "join", "resume": "r", "consent_version": "v1"}', "bad_join"),
        ('{"type": "media", "connected": "yes"}', "bad_field"),
        ('{"type": []}', "unknown_type"),
        ('{"type": {"a": 1}}', "unknown_type"),
        ("[" * 50_000 + "]" * 50_000, "too_large"),
        ("[" * 30_000, "not_json"),
    ],
)
def test_bad_messages(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        decode(raw)
    assert refused.value.code == code


def test_size_is_bounded_before_parsing() -> None:
    raw = json.dumps({"type": "offer", "sdp": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(ProtocolError) as refused:
        decode(raw)
    assert refused.value.code == "too_large"


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_no_input_raises_anything_but_protocol_error(raw: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        decode(raw)


@given(st.dictionaries(st.sampled_from(["type", "sdp", "audio", "video", "candidate",
                                        "sdpMid", "notes", "counselling", "resume",
                                        "invite", "access_token", "consult_id",
                                        "consent_version", "connected"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                                 st.sampled_from(sorted(TYPES)))))  # fmt: skip
def test_objects_of_any_shape_are_decoded_or_refused(obj: dict[str, object]) -> None:
    try:
        message = decode(json.dumps(obj))
    except ProtocolError:
        return
    assert decode(encode(message)) == message
