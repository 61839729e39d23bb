"""The version 1 recording writer, as the hub ran it before issue 13 (chunked AES-256-GCM),
kept only to make files that the reader must still open (and to measure it against)."""

from __future__ import annotations

import os
import secrets
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from signaling.recording_format import LEGACY_HEADER, identity, legacy_chunk_aad

CHUNK_SIZE = 64 * 1024


class LegacyWriter:
    """Encrypts the muxer's output as it arrives, one chunk in memory. Chunks are sealed only
    once more data follows, so the one :meth:`close` seals is the one marked final."""

    def __init__(self, path: Path, key: bytes, aad: bytes, chunk_size: int = CHUNK_SIZE) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._file.write(LEGACY_HEADER)
        self._aesgcm = AESGCM(key)
        self._aad = aad
        self._chunk_size = chunk_size
        self._pending = bytearray()
        self._index = 0

    def write(self, data: bytes) -> int:
        self._pending += data
        while len(self._pending) > self._chunk_size:
            self._seal(bytes(self._pending[: self._chunk_size]), final=False)
            del self._pending[: self._chunk_size]
        return len(data)

    def close(self) -> None:
        self._seal(bytes(self._pending), final=True)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def _seal(self, plaintext: bytes, final: bool) -> None:
        nonce = secrets.token_bytes(12)
        aad = legacy_chunk_aad(self._aad, self._index, final)
        sealed = self._aesgcm.encrypt(nonce, plaintext, aad)
        self._file.write(struct.pack(">I12s", len(sealed), nonce) + sealed)
        self._index += 1


def write_legacy(
    root: Path, key: bytes, consult_id: str, name: str, data: bytes, chunk_size: int
) -> Path:
    """``<root>/<consult_id>/<name>`` (``<party>-<n>.webm.enc``) holding ``data`` in version 1,
    written in small pieces as the muxer does."""
    party, segment = name.removesuffix(".webm.enc").split("-")
    folder = root / consult_id
    folder.mkdir(parents=True, exist_ok=True)
    aad = identity(consult_id, party, int(segment), LEGACY_HEADER)
    writer = LegacyWriter(folder / name, key, aad, chunk_size)
    for start in range(0, len(data), 333):
        writer.write(data[start : start + 333])
    writer.close()
    return folder / name
