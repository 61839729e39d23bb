"""The encrypted file format of consult recordings: a streaming writer, and a reader that knows
both versions.

Version 2 (written since issue 13) is Tink's AES-GCM-HKDF streaming AEAD, a reviewed format,
behind our own marker::

    file = MARKER + version byte (2) + Tink AES-GCM-HKDF streaming ciphertext
    Tink = header (length byte, 32-byte random salt, 7-byte nonce prefix) + segments, each
           AES-256-GCM under a key HKDF-derived from the stream key and the salt, its nonce
           binding the segment's index and whether it is the last one
    aad  = MARKER + version + len-prefixed consult id + len-prefixed party + segment n (4 bytes)

The stream key is HKDF-SHA256 of ``keys/recordings.key`` (so one key file serves both versions
while version 1 uses that key directly and version 2 never does). The associated data binds a
file to its consult, party and segment, so a changed byte, reordered, dropped or borrowed
segments, a cut end and a file moved elsewhere all fail on read. Nothing is written in the
clear. The writer holds one segment (64 KiB) and Tink's output buffer (128 KiB of ciphertext)
in memory, so a hub that dies loses up to that much of the end of a recording (a few seconds
of media); the rest reads, then fails as cut short.

Version 1 (before issue 13) was our own chunked AES-256-GCM with the key used directly::

    file   = MARKER + version byte (1) + chunk* final-chunk
    chunk  = length (4 bytes, big-endian: ciphertext incl. tag) + nonce (12 random bytes)
             + AES-GCM(plaintext) (ciphertext + 16-byte tag)
    aad    = MARKER + 1 + the identity fields above + chunk index (8 bytes) + final flag

It is only read now (:func:`_legacy_chunks`), so recordings made before stay readable.
"""

from __future__ import annotations

import io
import itertools
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import tink
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tink import proto_keyset_format, secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

MARKER = b"TPHREC"
LEGACY_HEADER = MARKER + bytes([1])
HEADER = MARKER + bytes([2])
#: Tink's ciphertext segment: what a writer or a reader holds in memory
SEGMENT_SIZE = 64 * 1024
#: a legacy chunk larger than this is refused, so a forged length cannot make us allocate much
MAX_CHUNK_SIZE = 1024 * 1024
#: the plaintext pieces a reader yields
READ_SIZE = 64 * 1024

_PREFIX = struct.Struct(">I12s")
_TAG_SIZE = 16
_STREAM_KEY_INFO = b"telepharm recordings: AES-GCM-HKDF streaming key, format 2"
_KEY_TYPE = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"

streaming_aead.register()


class RecordingError(Exception):
    """A recording could not be made or read; ``code`` is stable (for the protocol's error)."""

    code = "recording_failed"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code


class RecordingCorrupt(RecordingError):
    """A stored recording failed authentication: tampered, truncated, reordered or misplaced."""

    code = "recording_corrupt"


class RecordingKey:
    """Both versions' keys from the one 32-byte key file."""

    def __init__(self, key: bytes, segment_size: int = SEGMENT_SIZE) -> None:
        if len(key) != 32:
            raise ValueError("recordings need a 32-byte AES-256 key")
        self.legacy = AESGCM(key)
        self.stream = tink_streaming_aead(_derive(key), segment_size)


def _derive(key: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_STREAM_KEY_INFO)
    return hkdf.derive(key)


def tink_streaming_aead(key: bytes, segment_size: int) -> streaming_aead.StreamingAead:
    """Tink's primitive for a raw key: a one-key keyset built in memory, never stored (the
    fill images' vault uses it too, with a key of its own)."""
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
        ciphertext_segment_size=segment_size,
        derived_key_size=32,
        hkdf_hash_type=common_pb2.SHA256,
    )
    material = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
        version=0, params=params, key_value=key
    )
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url=_KEY_TYPE,
                    value=material.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=1,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    try:
        handle = proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
        return handle.primitive(streaming_aead.StreamingAead)
    except tink.TinkError as exc:  # e.g. a segment size Tink refuses
        raise ValueError(f"not a usable streaming key: {exc}") from None


def identity(consult_id: str, party: str, segment: int, header: bytes = HEADER) -> bytes:
    """The associated data that ties a file to its place."""
    return header + _field(consult_id) + _field(party) + struct.pack(">I", segment)


def _field(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


# --- writing -----------------------------------------------------------------------------------


class _DurableFile(io.RawIOBase):
    """The file under Tink's stream: counts what reaches the disk, and syncs it on close."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        written = self._file.write(data) or 0
        self.size += written
        return written

    def close(self) -> None:
        if self.closed:
            return
        os.fsync(self._file.fileno())  # a recording is part of the medical record
        self._file.close()
        super().close()


class EncryptedWriter:
    """A write-only, non-seekable file for the muxer that encrypts as it goes (version 2).

    :meth:`close` seals the last segment; a file whose writer never closed reads as truncated.
    """

    def __init__(self, path: Path, key: RecordingKey, aad: bytes) -> None:
        self._file = _DurableFile(path)
        self._file.write(HEADER)
        self._stream = key.stream.new_encrypting_stream(self._file, aad)
        self.name = path.name

    @property
    def bytes_written(self) -> int:
        """Encrypted bytes on disk so far (all of the file once closed)."""
        return self._file.size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        # so the matroska muxer writes a streamable file instead of seeking back to patch it
        return False

    def write(self, data: bytes) -> int:
        if self._stream.closed:
            raise ValueError("write to a closed recording")
        return self._stream.write(data)

    def close(self) -> None:
        self._stream.close()  # seals the final segment and closes (and syncs) the file


# --- reading -----------------------------------------------------------------------------------


def decrypt(
    path: Path, key: RecordingKey, consult_id: str, party: str, segment: int
) -> Iterator[bytes]:
    """The file's plaintext piece by piece, whichever version wrote it; raises
    :class:`RecordingCorrupt` at the first piece that fails authentication and at the end if
    the file was cut short, so a consumer must not trust data until it finishes."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise RecordingError("no such recording", "recording_missing") from None
    with file:
        header = file.read(len(HEADER))
        if header == HEADER:
            yield from _stream_pieces(file, key, identity(consult_id, party, segment))
        elif header == LEGACY_HEADER:
            legacy_aad = identity(consult_id, party, segment, LEGACY_HEADER)
            yield from _legacy_chunks(file, key.legacy, legacy_aad)
        else:
            raise RecordingCorrupt("not a recording in a known format and version")


def _stream_pieces(file: BinaryIO, key: RecordingKey, aad: bytes) -> Iterator[bytes]:
    try:
        stream = key.stream.new_decrypting_stream(file, aad)
        while piece := stream.read(READ_SIZE):
            yield piece
    except tink.TinkError:
        raise RecordingCorrupt(
            "the recording failed authentication (changed, cut short, reordered,"
            " or from another file)"
        ) from None


def _legacy_chunks(file: io.BufferedReader, aesgcm: AESGCM, aad: bytes) -> Iterator[bytes]:
    for index in itertools.count():
        prefix = file.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise RecordingCorrupt(f"the recording is truncated before chunk {index}")
        length, nonce = _PREFIX.unpack(prefix)
        if not _TAG_SIZE <= length <= MAX_CHUNK_SIZE + _TAG_SIZE:
            raise RecordingCorrupt(f"chunk {index} has an impossible length")
        sealed = file.read(length)
        if len(sealed) < length:
            raise RecordingCorrupt(f"the recording is truncated inside chunk {index}")
        final = not file.peek(1)  # only the last chunk in the file may be the final one
        yield _open_legacy_chunk(aesgcm, nonce, sealed, aad, index, final)
        if final:
            return


def legacy_chunk_aad(aad: bytes, index: int, final: bool) -> bytes:
    return aad + struct.pack(">Q?", index, final)


def _open_legacy_chunk(
    aesgcm: AESGCM, nonce: bytes, sealed: bytes, aad: bytes, index: int, final: bool
) -> bytes:
    try:
        return aesgcm.decrypt(nonce, sealed, legacy_chunk_aad(aad, index, final))
    except InvalidTag:
        pass
    try:  # an authentic chunk in the wrong place says what happened to the file's end
        aesgcm.decrypt(nonce, sealed, legacy_chunk_aad(aad, index, not final))
    except InvalidTag:
        raise RecordingCorrupt(
            f"chunk {index} failed authentication (changed, moved, or from another file)"
        ) from None
    if final:
        raise RecordingCorrupt(f"the recording is truncated after chunk {index}")
    raise RecordingCorrupt(f"data follows the final chunk ({index})")
