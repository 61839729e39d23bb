"""Electronic prescriptions for controlled substances, as the receiving pharmacy application
owes them (21 CFR 1311.205, 1311.210; ncpdp-script.md §9).

Pure domain code: no web framework, no database, no network. Verifying a practitioner's
``Header/DigitalSignature`` (:mod:`.verifier`: the digest over the signed content, the signature
with the certificate's key, the chain to the configured roots, revocation by CRL through the
:class:`~.revocation.CrlFetcher` port) and signing the hub's own archive record of what it
received (:mod:`.archive`) both use ``cryptography``.
"""

from .archive import ArchiveKey, ArchiveRecord, ArchiveSignatureError, key_id
from .chain import TrustStore, load_certificates
from .revocation import CrlCache, CrlFetcher, CrlUnavailable, load_crls
from .signature import SIGNED_CONTENT, signed_content
from .verifier import Outcome, Verification, Verifier

__all__ = [
    "SIGNED_CONTENT",
    "ArchiveKey",
    "ArchiveRecord",
    "ArchiveSignatureError",
    "CrlCache",
    "CrlFetcher",
    "CrlUnavailable",
    "Outcome",
    "TrustStore",
    "Verification",
    "Verifier",
    "key_id",
    "load_certificates",
    "load_crls",
    "signed_content",
]
