"""The hub's own signature on a controlled-substance record it received (21 CFR 1311.210(c),
1311.205(b)(5)): whether or not the practitioner's signature came, the pharmacy application
signs and archives the record on receipt.

An :class:`ArchiveRecord` names the message as received (its SHA-256: the original bytes are
kept beside the record), its schedule, what came of the practitioner's signature and whether
the record is "verified on receipt"; :class:`ArchiveKey` signs its canonical JSON with ECDSA
P-256 / SHA-256 (FIPS 186). Changing the record, the signature or the original bytes makes
:meth:`ArchiveKey.check` fail.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["ArchiveKey", "ArchiveRecord", "ArchiveSignatureError", "key_id"]

#: what came with the message: a verified or failed signature, the indicator only, or nothing
Practitioner = Literal["verified", "failed", "indicator", "absent"]


class ArchiveSignatureError(ValueError):
    """An archived record whose signature does not hold (the text says how)."""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """What the hub signs of a record it received (times as ISO 8601 in UTC)."""

    prescription_id: str
    inbound_message_id: str
    message_id: str
    sender: str
    sha256: str
    received_at: str
    schedule: str | None
    practitioner_signature: Practitioner
    verification: str | None  # Outcome value, when a signature came
    verified_on_receipt: bool
    archived_at: str

    def canonical(self) -> bytes:
        """The signed bytes: sorted keys, no spaces, UTF-8."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchiveRecord:
        return cls(**data)


def _public_keys(data: bytes) -> list[ec.EllipticCurvePublicKey]:
    found = []
    for match in re.finditer(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", data, re.S):
        pem = match.group(0)
        key: Any = (
            serialization.load_pem_private_key(pem, password=None).public_key()
            if b"PRIVATE KEY" in match.group(1)
            else serialization.load_pem_public_key(pem)
        )
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("earlier archive keys must be EC keys")
        found.append(key)
    return found


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The SHA-256 of the key's SubjectPublicKeyInfo (DER), hex: names the key that signed."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class ArchiveKey:
    """The hub's archive signing key (ECDSA P-256), and the public keys of earlier ones."""

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        earlier: tuple[ec.EllipticCurvePublicKey, ...] = (),
    ) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("the archive key must be an EC P-256 key")
        self._key = private_key
        public = [private_key.public_key(), *earlier]
        self._public = {key_id(k): k for k in public}
        self.id = key_id(private_key.public_key())

    @classmethod
    def generate(cls) -> ArchiveKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes, earlier: bytes = b"") -> ArchiveKey:
        """From the signing key (PEM) and the earlier keys still to be checked (PEM public or
        private keys, any number), which only verify."""
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the archive key must be an EC P-256 key")
        return cls(key, tuple(_public_keys(earlier)))

    def private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, record: ArchiveRecord) -> bytes:
        return self._key.sign(record.canonical(), ec.ECDSA(hashes.SHA256()))

    def check(self, record: ArchiveRecord, signature: bytes, signed_by: str, raw: bytes) -> None:
        """Raise :class:`ArchiveSignatureError` unless ``signature`` by key ``signed_by`` holds
        for ``record`` and ``raw`` is the message it names."""
        key = self._public.get(signed_by)
        if key is None:
            raise ArchiveSignatureError(f"signed by key {signed_by[:16]}…, which the hub lacks")
        try:
            key.verify(signature, record.canonical(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ArchiveSignatureError("the record or its signature was altered") from None
        if hashlib.sha256(raw).hexdigest() != record.sha256:
            raise ArchiveSignatureError("the original message bytes were altered")
