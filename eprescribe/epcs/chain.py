"""Certificates: reading them, and the path from a practitioner's certificate to a trusted root.

The path is built by hand rather than with ``cryptography.x509.verification``, whose policies
are those of TLS (server or client authentication, subject alternative names) and refuse the
signing certificates practitioners hold.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature

__all__ = ["ChainError", "TrustStore", "build_path", "load_certificates", "read_x509_data"]

#: the most certificates between a practitioner's and a root
MAX_DEPTH: Final = 6
_PEM: Final = b"-----BEGIN CERTIFICATE-----"


class ChainError(ValueError):
    """No path to a trusted root (the text says why)."""


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates in ``data``: PEM (any number) or one DER."""
    if _PEM in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def read_x509_data(value: str) -> list[x509.Certificate]:
    """``X509Data``: base64 DER of the practitioner's certificate, or PEM (the practitioner's
    first, then intermediates). Raises ValueError."""
    text = value.strip()
    if text.startswith(_PEM.decode()):
        return load_certificates(text.encode())
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("X509Data is neither base64 DER nor PEM") from None
    return [x509.load_der_x509_certificate(der)]


@dataclass(frozen=True, slots=True)
class TrustStore:
    """The roots practitioners' certificates must chain to (``TELEPHARM_EPCS_TRUST_ROOTS``)."""

    roots: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_path(cls, path: Path) -> TrustStore:
        """From a PEM bundle, or a directory of ``.pem``, ``.crt``, ``.cer`` or ``.der`` files."""
        files = (
            sorted(
                p for p in path.iterdir() if p.suffix.lower() in {".pem", ".crt", ".cer", ".der"}
            )
            if path.is_dir()
            else [path]
        )
        roots = [cert for file in files for cert in load_certificates(file.read_bytes())]
        return cls(tuple(roots))


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def build_path(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], store: TrustStore
) -> list[x509.Certificate]:
    """``leaf``, the intermediates that issued it, and the trusted root they end at; raises
    :class:`ChainError`. A root counts by being in the store, whatever it says of itself."""
    path = [leaf]
    for _ in range(MAX_DEPTH):
        current = path[-1]
        root = next((r for r in store.roots if _issued_by(current, r)), None)
        if root is not None:
            return [*path, root]
        step = next(
            (c for c in intermediates if c not in path and _is_ca(c) and _issued_by(current, c)),
            None,
        )
        if step is None:
            break
        path.append(step)
    name = path[-1].issuer.rfc4514_string()
    raise ChainError(f"no trusted root issued the chain (it ends at an issuer named {name})")


def outside_validity(path: Iterable[x509.Certificate], at: dt.datetime) -> str | None:
    """Why a certificate of ``path`` is not valid at ``at``, or None when all are."""
    for cert in path:
        if at > cert.not_valid_after_utc:
            return (
                f"certificate {cert.subject.rfc4514_string()} expired "
                f"{cert.not_valid_after_utc.isoformat()}"
            )
        if at < cert.not_valid_before_utc:
            return (
                f"certificate {cert.subject.rfc4514_string()} is not valid before "
                f"{cert.not_valid_before_utc.isoformat()}"
            )
    return None


def signs_documents(cert: x509.Certificate) -> bool:
    """The certificate may sign (a key usage, when stated, of digital signature or
    non-repudiation), and is not a CA's."""
    if _is_ca(cert):
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(usage.digital_signature or usage.content_commitment)
