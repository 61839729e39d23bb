"""Verifying a practitioner's digital signature on receipt (21 CFR 1311.210(b)).

:meth:`Verifier.verify` takes the message's bytes as received and its
``Header/DigitalSignature`` and answers with a :class:`Verification`: ``verified``, or the
first thing that failed, in this order: the signature parts cannot be read (``malformed``),
the digest does not match the signed content (``digest_mismatch``: the content was altered),
the signature does not verify with the certificate's key (``bad_signature``), no path leads
from the certificate to a configured root (``untrusted_chain``), a certificate of the path is
not valid at receipt (``expired``), one is revoked (``revoked``), or its revocation status
cannot be known (``crl_unavailable``). Only the CRL fetch may touch the network (through the
:class:`~.revocation.CrlFetcher` port): callers verify outside any database transaction.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from eprescribe.ncpdp.errors import XmlSyntaxError
from eprescribe.ncpdp.header import DigitalSignature

from .chain import (
    ChainError,
    TrustStore,
    build_path,
    outside_validity,
    read_x509_data,
    signs_documents,
)
from .revocation import CrlCache, CrlUnavailable, check_path
from .signature import SIGNED_CONTENT, DigestError, digest_algorithm, signed_content, unbase64

__all__ = ["Outcome", "Verification", "Verifier"]


class Outcome(enum.StrEnum):
    VERIFIED = "verified"
    MALFORMED = "malformed"
    DIGEST_MISMATCH = "digest_mismatch"
    BAD_SIGNATURE = "bad_signature"
    UNTRUSTED_CHAIN = "untrusted_chain"
    EXPIRED = "expired"
    REVOKED = "revoked"
    CRL_UNAVAILABLE = "crl_unavailable"


@dataclass(frozen=True, slots=True)
class Verification:
    """What verifying a practitioner's signature found; ``reason`` in plain words, and the
    certificate it rests on in ``evidence`` (subject, issuer, serial: no patient data)."""

    outcome: Outcome
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "reason": self.reason, **self.evidence}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verification:
        rest = {k: v for k, v in data.items() if k not in ("outcome", "reason")}
        return cls(Outcome(data["outcome"]), str(data["reason"]), rest)


def _check_signature(
    key: Any, signature: bytes, digest: bytes, algorithm: hashes.HashAlgorithm, content: bytes
) -> None:
    """Raises InvalidSignature (or TypeError for a key type no signature can use)."""
    prehashed = utils.Prehashed(algorithm)
    if isinstance(key, rsa.RSAPublicKey):
        try:
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        except InvalidSignature:
            pss = padding.PSS(padding.MGF1(algorithm), padding.PSS.AUTO)
            key.verify(signature, digest, pss, prehashed)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, digest, ec.ECDSA(prehashed))
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, content)  # Ed25519 hashes the content itself
    else:
        raise TypeError(f"a {type(key).__name__} cannot sign a prescription")


def _names(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "certificate_subject": cert.subject.rfc4514_string(),
        "certificate_issuer": cert.issuer.rfc4514_string(),
        "certificate_serial": format(cert.serial_number, "x"),
    }


class Verifier:
    """Verifies practitioners' signatures against ``store``'s roots, with the operator's
    ``crls`` and, for the others, CRLs fetched through ``cache`` (None: only configured CRLs)."""

    def __init__(
        self,
        store: TrustStore,
        crls: Sequence[x509.CertificateRevocationList] = (),
        cache: CrlCache | None = None,
    ) -> None:
        self._store = store
        self._crls = tuple(crls)
        self._cache = cache

    def verify(
        self,
        raw: bytes,
        signature: DigitalSignature,
        at: dt.datetime,
        now: dt.datetime | None = None,
    ) -> Verification:
        """Verify ``signature`` of the message ``raw`` as received at ``at`` (certificates
        must be valid then); CRLs must be current at ``now`` (default ``at``)."""
        evidence: dict[str, Any] = {
            "digest_method": signature.digest_method,
            "signed_content": SIGNED_CONTENT,
        }
        try:
            algorithm = digest_algorithm(signature.digest_method)
            digest_sent = unbase64(signature.digest_value, "DigestValue")
            signature_sent = unbase64(signature.signature_value, "SignatureValue")
            certs = read_x509_data(signature.x509_data or "")
            content = signed_content(raw)
        except (DigestError, XmlSyntaxError, ValueError) as exc:
            return Verification(Outcome.MALFORMED, str(exc), evidence)
        leaf, intermediates = certs[0], certs[1:]
        evidence |= _names(leaf)
        hasher = hashes.Hash(algorithm)
        hasher.update(content)
        digest = hasher.finalize()
        if not hmac.compare_digest(digest, digest_sent):
            reason = "the digest does not match the signed content: it was altered after signing"
            return Verification(Outcome.DIGEST_MISMATCH, reason, evidence)
        try:
            _check_signature(leaf.public_key(), signature_sent, digest, algorithm, content)
        except (InvalidSignature, TypeError, UnsupportedAlgorithm, ValueError):
            reason = "the signature does not verify with the practitioner's certificate"
            return Verification(Outcome.BAD_SIGNATURE, reason, evidence)
        return self._trust(leaf, intermediates, at, now or at, evidence)

    def _trust(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: dt.datetime,
        now: dt.datetime,
        evidence: dict[str, Any],
    ) -> Verification:
        if not signs_documents(leaf):
            reason = "the certificate is not one for signing documents"
            return Verification(Outcome.UNTRUSTED_CHAIN, reason, evidence)
        try:
            path = build_path(leaf, intermediates, self._store)
        except ChainError as exc:
            return Verification(Outcome.UNTRUSTED_CHAIN, str(exc), evidence)
        evidence["root"] = path[-1].subject.rfc4514_string()
        expired = outside_validity(path, at)
        if expired is not None:
            return Verification(Outcome.EXPIRED, expired, evidence)
        try:
            revoked = check_path(path, self._crls, self._cache, now)
        except CrlUnavailable as exc:
            return Verification(Outcome.CRL_UNAVAILABLE, str(exc), evidence)
        if revoked is not None:
            evidence |= {
                "revoked_subject": revoked.subject,
                "revoked_at": revoked.revoked_at.isoformat(),
                "crl": revoked.crl_source,
            }
            reason = f"certificate {revoked.subject} is revoked"
            return Verification(Outcome.REVOKED, reason, evidence)
        return Verification(Outcome.VERIFIED, "the practitioner's signature verified", evidence)
