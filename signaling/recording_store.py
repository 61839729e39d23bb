"""Where consult recordings are kept: one encrypted file per segment,
``<root>/<consult id>/<party>-<n>.webm.enc``, in the format of :mod:`signaling.recording_format`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from signaling.consults import PARTIES
from signaling.recording_format import (
    SEGMENT_SIZE,
    EncryptedWriter,
    RecordingError,
    RecordingKey,
    decrypt,
    identity,
)

SUFFIX = ".webm.enc"

_CONSULT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SEGMENT_NAME = re.compile(r"(?P<party>[a-z]+)-(?P<segment>[1-9][0-9]{0,8})" + re.escape(SUFFIX))


class RecordingWriter(Protocol):
    """A write-only, non-seekable binary file for the muxer (PyAV checks ``seekable()``)."""

    name: str

    @property
    def bytes_written(self) -> int: ...

    def writable(self) -> bool: ...
    def seekable(self) -> bool: ...
    def write(self, data: bytes) -> int: ...
    def close(self) -> None: ...


class RecordingStore(Protocol):
    """Where recordings go: each call opens the party's next segment in the consult."""

    def open_writer(self, consult_id: str, party: str) -> RecordingWriter: ...


def check_identity(consult_id: str, party: str) -> None:
    """Both end up in a path, so only plain identifiers and the two parties pass."""
    if not _CONSULT_ID.fullmatch(consult_id):
        raise RecordingError("the consult id must be a plain identifier", "recording_bad_id")
    if party not in PARTIES:
        raise RecordingError("only the pharmacist and the patient are recorded", "bad_party")


class EncryptedRecordingStore:
    """Recordings under ``root``, encrypted with ``key`` (the 32 bytes of the key file);
    ``segment_size`` is the format's ciphertext segment (tests make it small)."""

    def __init__(self, root: Path, key: bytes, segment_size: int = SEGMENT_SIZE) -> None:
        self._root = root
        self._key = RecordingKey(key, segment_size)

    def open_writer(self, consult_id: str, party: str) -> EncryptedWriter:
        check_identity(consult_id, party)
        folder = self._root / consult_id
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        first = 1 + sum(1 for name in self.names(consult_id) if name.startswith(f"{party}-"))
        for segment in itertools.count(first):
            path = folder / f"{party}-{segment}{SUFFIX}"
            try:
                return EncryptedWriter(path, self._key, identity(consult_id, party, segment))
            except FileExistsError:  # a segment with that number exists: take the next
                continue
        raise AssertionError("unreachable")

    def names(self, consult_id: str) -> list[str]:
        """The consult's segment file names, sorted."""
        folder = self._root / consult_id
        if not _CONSULT_ID.fullmatch(consult_id) or not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if _SEGMENT_NAME.fullmatch(p.name))

    def open_reader(self, consult_id: str, name: str) -> Iterator[bytes]:
        """The segment's plaintext piece by piece (bounded memory), in either format version;
        raises :class:`~signaling.recording_format.RecordingCorrupt` at the first piece that
        fails authentication, and at the end if the file was cut short, so a consumer must not
        trust data until it finishes."""
        match = _SEGMENT_NAME.fullmatch(name)
        if match is None:
            raise RecordingError("not a recording name", "recording_missing")
        party, segment = match["party"], int(match["segment"])
        check_identity(consult_id, party)
        return decrypt(self._root / consult_id / name, self._key, consult_id, party, segment)

    def read(self, consult_id: str, name: str) -> bytes:
        """The whole segment's plaintext (it is held in memory: use :meth:`open_reader` to
        stream large ones)."""
        return b"".join(self.open_reader(consult_id, name))
