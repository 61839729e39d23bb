"""The recordings' file format and store: version 2 (Tink's AES-GCM-HKDF streaming) round trips
and detects tampering; version 1 files, written by the old chunked AES-GCM code, still read."""

from __future__ import annotations

import io
import os
import shutil
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from av import AudioFrame

from signaling.recording_format import HEADER, LEGACY_HEADER, RecordingCorrupt, RecordingError
from signaling.recording_store import EncryptedRecordingStore
from tests.support.legacy_recording import write_legacy

KEY = bytes(range(32))
WEBM_MAGIC = bytes.fromhex("1a45dfa3")
CONSULT = "c0ffee00-1234"
PLAINTEXT = WEBM_MAGIC + os.urandom(3496)  # 3.5 chunks of 1000 bytes

Tamper = Callable[[list[bytes]], list[bytes]]


@pytest.fixture
def store(tmp_path: Path) -> EncryptedRecordingStore:
    return EncryptedRecordingStore(tmp_path, KEY)


@pytest.fixture
def small_segments(tmp_path: Path) -> EncryptedRecordingStore:
    return EncryptedRecordingStore(tmp_path, KEY, segment_size=1000)


def write(store: EncryptedRecordingStore, data: bytes, party: str = "patient") -> str:
    writer = store.open_writer(CONSULT, party)
    for start in range(0, len(data), 333):  # as the muxer does: many small writes
        assert writer.write(data[start : start + 333]) == len(data[start : start + 333])
    writer.close()
    writer.close()
    return writer.name


# --- version 2 ---------------------------------------------------------------------------------

#: Tink's stream header: its length byte, a 32-byte salt and a 7-byte nonce prefix
TINK_HEADER = 1 + 32 + 7


def segments(raw: bytes, size: int = 1000) -> list[bytes]:
    """Our marker plus Tink's header, then the file's ciphertext segments (the first is shorter
    by the header)."""
    body = raw[len(HEADER) :]
    first = size - TINK_HEADER
    pieces = [raw[: len(HEADER) + TINK_HEADER], body[TINK_HEADER:size]]
    pieces += [body[at : at + size] for at in range(size, len(body), size)]
    assert len(body) > first
    return pieces


def test_segments_round_trip(small_segments: EncryptedRecordingStore, tmp_path: Path) -> None:
    name = write(small_segments, PLAINTEXT)
    raw = (tmp_path / CONSULT / name).read_bytes()
    assert raw.startswith(HEADER)
    assert len(segments(raw)) == 1 + 4  # the header, then 944 + 3 * 984 plaintext bytes
    assert small_segments.read(CONSULT, name) == PLAINTEXT
    assert write(small_segments, b"") == "patient-2.webm.enc"
    assert small_segments.read(CONSULT, "patient-2.webm.enc") == b""
    write(small_segments, b"x" * 944, party="pharmacist")  # ends on a segment boundary
    assert small_segments.read(CONSULT, "pharmacist-1.webm.enc") == b"x" * 944
    assert small_segments.names(CONSULT) == [
        "patient-1.webm.enc",
        "patient-2.webm.enc",
        "pharmacist-1.webm.enc",
    ]


def test_large_segments_are_read_in_bounded_pieces(store: EncryptedRecordingStore) -> None:
    data = os.urandom(300_000)
    name = write(store, data)
    pieces = list(store.open_reader(CONSULT, name))
    assert max(len(p) for p in pieces) <= 64 * 1024
    assert b"".join(pieces) == data


def flip_byte(pieces: list[bytes]) -> list[bytes]:
    middle = bytearray(pieces[2])
    middle[40] ^= 1
    return [*pieces[:2], bytes(middle), *pieces[3:]]


TAMPERING: dict[str, Tamper] = {
    "one byte changed": flip_byte,
    "the salt changed": lambda p: [p[0][:-20] + bytes(20), *p[1:]],
    "two segments swapped": lambda p: [p[0], p[1], p[3], p[2], *p[4:]],
    "the first two swapped": lambda p: [p[0], p[2], p[1], *p[3:]],
    "final segment dropped": lambda p: p[:-1],
    "final segment cut short": lambda p: [*p[:-1], p[-1][:-5]],
    "a segment dropped": lambda p: [*p[:2], *p[3:]],
    "a segment appended": lambda p: [*p, p[2]],
    "a byte appended": lambda p: [*p, b"\0"],
    "only the header": lambda p: p[:1],
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_is_detected(
    small_segments: EncryptedRecordingStore, tmp_path: Path, tamper: Tamper
) -> None:
    name = write(small_segments, PLAINTEXT)
    path = tmp_path / CONSULT / name
    path.write_bytes(b"".join(tamper(segments(path.read_bytes()))))
    with pytest.raises(RecordingCorrupt, match="failed authentication"):
        small_segments.read(CONSULT, name)


def test_files_and_segments_cannot_be_moved(
    small_segments: EncryptedRecordingStore, tmp_path: Path
) -> None:
    first = tmp_path / CONSULT / write(small_segments, PLAINTEXT)
    second = tmp_path / CONSULT / write(small_segments, PLAINTEXT)
    spliced = segments(second.read_bytes())
    spliced[2] = segments(first.read_bytes())[2]  # same key, same place, other file
    second.write_bytes(b"".join(spliced))
    with pytest.raises(RecordingCorrupt):
        small_segments.read(CONSULT, second.name)

    shutil.copy(first, tmp_path / CONSULT / "pharmacist-1.webm.enc")
    with pytest.raises(RecordingCorrupt):
        small_segments.read(CONSULT, "pharmacist-1.webm.enc")
    (tmp_path / "other-consult").mkdir()
    shutil.copy(first, tmp_path / "other-consult" / first.name)
    with pytest.raises(RecordingCorrupt):
        small_segments.read("other-consult", first.name)
    with pytest.raises(RecordingCorrupt):
        EncryptedRecordingStore(tmp_path, bytes(32)).read(CONSULT, first.name)


def test_a_writer_that_never_closed_reads_as_cut_short(
    small_segments: EncryptedRecordingStore,
) -> None:
    writer = small_segments.open_writer(CONSULT, "patient")
    writer.write(os.urandom(300_000))  # the hub died here: the final segment was never sealed
    assert writer.bytes_written > 100_000  # what a crash leaves: segments but no last one
    with pytest.raises(RecordingCorrupt):
        small_segments.read(CONSULT, writer.name)
    writer.close()


def test_an_unknown_version_is_refused(
    small_segments: EncryptedRecordingStore, tmp_path: Path
) -> None:
    path = tmp_path / CONSULT / write(small_segments, PLAINTEXT)
    path.write_bytes(b"TPHREC\x03" + path.read_bytes()[len(HEADER) :])
    with pytest.raises(RecordingCorrupt, match="format"):
        small_segments.read(CONSULT, path.name)


@pytest.mark.parametrize("name", ["patient-9.webm.enc", "../patient-1.webm.enc", "notes.txt"])
def test_unknown_names_are_missing(store: EncryptedRecordingStore, name: str) -> None:
    with pytest.raises(RecordingError) as missing:
        store.read(CONSULT, name)
    assert missing.value.code == "recording_missing"


def test_keys_are_aes_256() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        EncryptedRecordingStore(Path("unused"), b"short")
    with pytest.raises(ValueError, match="segment_size too small"):
        EncryptedRecordingStore(Path("unused"), KEY, segment_size=50)


# --- version 1, written before issue 13 ------------------------------------------------------


def legacy(tmp_path: Path, data: bytes, name: str = "patient-1.webm.enc") -> Path:
    return write_legacy(tmp_path, KEY, CONSULT, name, data, chunk_size=1000)


def split(raw: bytes) -> list[bytes]:
    """The file's chunks, each with its length and nonce."""
    chunks, at = [], len(LEGACY_HEADER)
    while at < len(raw):
        (length,) = struct.unpack(">I", raw[at : at + 4])
        chunks.append(raw[at : at + 16 + length])
        at += 16 + length
    return chunks


def test_an_old_recording_still_decodes(store: EncryptedRecordingStore, tmp_path: Path) -> None:
    legacy(tmp_path, tone_webm())
    with av.open(io.BytesIO(store.read(CONSULT, "patient-1.webm.enc"))) as container:
        counts = Counter(type(f).__name__ for f in container.decode(*container.streams))
    assert counts["AudioFrame"] >= 40


def tone_webm() -> bytes:
    """A second of Opus in WebM, as the recorder muxes it."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000)
        for index in range(50):
            frame = AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(bytes(960 * 2))
            frame.sample_rate, frame.pts = 48000, index * 960
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def test_old_segments_round_trip_in_chunks(store: EncryptedRecordingStore, tmp_path: Path) -> None:
    legacy(tmp_path, PLAINTEXT)
    assert [len(c) for c in store.open_reader(CONSULT, "patient-1.webm.enc")] == [
        1000,
        1000,
        1000,
        500,
    ]
    assert store.read(CONSULT, "patient-1.webm.enc") == PLAINTEXT
    legacy(tmp_path, b"", "patient-2.webm.enc")
    assert store.read(CONSULT, "patient-2.webm.enc") == b""
    legacy(tmp_path, b"x" * 2000, "pharmacist-1.webm.enc")  # ends on a chunk boundary
    assert store.read(CONSULT, "pharmacist-1.webm.enc") == b"x" * 2000
    assert write(store, b"new") == "patient-3.webm.enc"  # new segments follow the old ones
    assert (tmp_path / CONSULT / "patient-3.webm.enc").read_bytes().startswith(HEADER)


def flip_chunk_byte(chunks: list[bytes]) -> list[bytes]:
    middle = bytearray(chunks[1])
    middle[40] ^= 1
    return [chunks[0], bytes(middle), *chunks[2:]]


LEGACY_TAMPERING: dict[str, tuple[Tamper, str]] = {
    "one byte changed": (flip_chunk_byte, "chunk 1 failed authentication"),
    "two chunks swapped": (lambda c: [c[1], c[0], *c[2:]], "chunk 0 failed authentication"),
    "final chunk dropped": (lambda c: c[:-1], "truncated after chunk 2"),
    "final chunk cut short": (lambda c: [*c[:-1], c[-1][:-5]], "truncated inside chunk 3"),
    "a chunk dropped": (lambda c: [c[0], *c[2:]], "chunk 1 failed authentication"),
    "a chunk appended": (lambda c: [*c, c[1]], "data follows the final chunk"),
    "a length forged": (
        lambda c: [c[0], struct.pack(">I", 2**31) + c[1][4:], *c[2:]],
        "chunk 1 has an impossible length",
    ),
}


@pytest.mark.parametrize(("tamper", "error"), LEGACY_TAMPERING.values(), ids=LEGACY_TAMPERING)
def test_tampering_with_old_recordings_is_detected(
    store: EncryptedRecordingStore, tmp_path: Path, tamper: Tamper, error: str
) -> None:
    path = legacy(tmp_path, PLAINTEXT)
    path.write_bytes(LEGACY_HEADER + b"".join(tamper(split(path.read_bytes()))))
    with pytest.raises(RecordingCorrupt, match=error):
        store.read(CONSULT, path.name)


def test_old_chunks_and_files_cannot_be_moved(
    store: EncryptedRecordingStore, tmp_path: Path
) -> None:
    first = legacy(tmp_path, PLAINTEXT)
    second = legacy(tmp_path, PLAINTEXT, "patient-2.webm.enc")
    spliced = split(first.read_bytes())
    spliced[1] = split(second.read_bytes())[1]  # same key, same place, other segment
    second.write_bytes(LEGACY_HEADER + b"".join(spliced))
    with pytest.raises(RecordingCorrupt):
        store.read(CONSULT, second.name)

    shutil.copy(first, tmp_path / CONSULT / "pharmacist-1.webm.enc")
    with pytest.raises(RecordingCorrupt):
        store.read(CONSULT, "pharmacist-1.webm.enc")
    (tmp_path / "other-consult").mkdir()
    shutil.copy(first, tmp_path / "other-consult" / first.name)
    with pytest.raises(RecordingCorrupt):
        store.read("other-consult", first.name)
