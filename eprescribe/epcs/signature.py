"""What a practitioner's SCRIPT signature covers, and the algorithms it may use.

SCRIPT 2017071 carries ``DigestMethod``, ``DigestValue``, ``SignatureValue`` and ``X509Data``
in ``Header/DigitalSignature``. The hub reads them as follows (docs/epcs.md says why):

- the signed content is the message's ``Body`` element in exclusive XML canonical form
  (C14N 1.0, no comments) as the hub's hardened parser reads it, so whitespace between
  elements (pretty printing) is not part of it; the ``Header``, and with it the signature
  itself, is not signed;
- ``DigestValue`` is the base64 digest of that content with ``DigestMethod``;
- ``SignatureValue`` is the base64 signature of the same content by the certificate's key,
  hashed with ``DigestMethod``: RSA PKCS #1 v1.5 (or PSS), ECDSA (DER), or Ed25519;
- ``X509Data`` is the practitioner's certificate, base64 DER or PEM; a PEM value may add the
  intermediate certificates after it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from cryptography.hazmat.primitives import hashes
from lxml import etree

from eprescribe.ncpdp.xml import parse_document

__all__ = ["SIGNED_CONTENT", "DigestError", "digest_algorithm", "signed_content", "unbase64"]

#: how docs and evidence name the signed content
SIGNED_CONTENT: Final = "exclusive C14N of /Message/Body"

# SHA-1 is refused: NIST SP 800-131A disallows it for generating digital signatures
_DIGESTS: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha-256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha-384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha-512": hashes.SHA512,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}


class DigestError(ValueError):
    """A signature part the hub cannot read (its text says which, never its value)."""


def digest_algorithm(name: str | None) -> hashes.HashAlgorithm:
    """The hash ``DigestMethod`` names (a short name or the XML Signature URI)."""
    algorithm = _DIGESTS.get((name or "").strip().lower())
    if algorithm is None:
        raise DigestError(f"digest method {name!r} is not accepted (SHA-256, -384 or -512)")
    return algorithm()


def unbase64(value: str | None, name: str) -> bytes:
    if not value:
        raise DigestError(f"{name} is missing")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DigestError(f"{name} is not base64") from None


def signed_content(raw: bytes) -> bytes:
    """The bytes a practitioner signs: the message's ``Body`` in exclusive canonical form.
    Raises :class:`DigestError` when the message has no ``Body``."""
    root = parse_document(raw)
    body = root.find("Body")
    if body is None:
        raise DigestError("the message has no Body")
    return etree.tostring(body, method="c14n", exclusive=True, with_comments=False)
