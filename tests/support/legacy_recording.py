"""The version 1 recording writer, as the hub ran it before issue 13 (chunked AES-256-GCM),
kept only to make files that the reader must still open."""

from __future__ import annotations

import secrets
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from signaling.recording_format import LEGACY_HEADER, identity, legacy_chunk_aad


def write_legacy(
    root: Path, key: bytes, consult_id: str, name: str, data: bytes, chunk_size: int
) -> Path:
    """``<root>/<consult_id>/<name>`` holding ``data`` in version 1, chunked as the old writer
    did: every chunk full but the last, which is marked final (empty only for no data)."""
    party, segment = name.removesuffix(".webm.enc").split("-")
    aad = identity(consult_id, party, int(segment), LEGACY_HEADER)
    aesgcm = AESGCM(key)
    pieces = [data[at : at + chunk_size] for at in range(0, len(data), chunk_size)]
    pieces = pieces or [b""]
    out = bytearray(LEGACY_HEADER)
    for index, piece in enumerate(pieces):
        nonce = secrets.token_bytes(12)
        final = index == len(pieces) - 1
        sealed = aesgcm.encrypt(nonce, piece, legacy_chunk_aad(aad, index, final))
        out += struct.pack(">I12s", len(sealed), nonce) + sealed
    folder = root / consult_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(bytes(out))
    return path
