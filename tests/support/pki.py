"""A synthetic public-key infrastructure for EPCS tests: a root CA, an intermediate, practitioner
certificates (valid, revoked, expired, from an untrusted root), CRLs, and SCRIPT messages
signed as a prescriber's system signs them (docs/epcs.md)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from eprescribe.epcs import signed_content

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Synthetic Test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Authority:
    """A CA: its key, certificate and the serials it revoked."""

    key: Key
    cert: x509.Certificate
    crl_url: str | None = None
    revoked: list[int] = field(default_factory=list)

    def issue(
        self,
        common: str,
        *,
        ca: bool = False,
        key: Key | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        crl_url: str | None = None,
    ) -> tuple[Key, x509.Certificate]:
        key = key or _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - DAY)
            .not_valid_after(not_after or NOW + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                critical=True,
            )
        url = crl_url or self.crl_url
        if url:
            builder = builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(url)], None, None, None
                        )
                    ]
                ),
                critical=False,
            )
        return key, builder.sign(self.key, hashes.SHA256())

    def authority(self, common: str, crl_url: str | None = None) -> Authority:
        key, cert = self.issue(common, ca=True)
        return Authority(key, cert, crl_url)

    def crl(
        self, *, next_update: dt.datetime | None = None, last_update: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(last_update or NOW - DAY)
            .next_update(next_update or NOW + 7 * DAY)
        )
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(NOW - DAY)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())

    def crl_der(self, **kwargs: dt.datetime) -> bytes:
        return self.crl(**kwargs).public_bytes(serialization.Encoding.DER)


def root(common: str = "Synthetic Root CA") -> Authority:
    key = _key()
    name = _name(common)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 10 * DAY)
        .not_valid_after(NOW + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_roots(path: Path, *authorities: Authority) -> Path:
    path.write_bytes(pem(*(a.cert for a in authorities)))
    return path


def sign_message(
    raw: bytes,
    key: Key,
    cert: x509.Certificate,
    *,
    chain: tuple[x509.Certificate, ...] = (),
    tamper: tuple[bytes, bytes] | None = None,
) -> bytes:
    """``raw`` (a NewRx without DigitalSignature) signed with ``key``: its Header gets the
    DigitalSignature parts; ``X509Data`` is the certificate in base64 DER, or PEM with
    ``chain`` after it. ``tamper`` (old, new) edits the bytes after signing."""
    content = signed_content(raw)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(content)
    if isinstance(key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding

        value = key.sign(content, padding.PKCS1v15(), hashes.SHA256())
    else:
        value = key.sign(content, ec.ECDSA(hashes.SHA256()))
    x509_data = (
        pem(cert, *chain).decode()
        if chain
        else base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    )
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root_el = etree.fromstring(raw, parser)
    header = root_el.find("Header")
    assert header is not None
    old = header.find("DigitalSignature")
    signature = etree.Element("DigitalSignature", Version="T")
    for tag, text in (
        ("DigestMethod", "SHA256"),
        ("DigestValue", base64.b64encode(digest.finalize()).decode()),
        ("SignatureValue", base64.b64encode(value).decode()),
        ("X509Data", x509_data),
    ):
        etree.SubElement(signature, tag).text = text
    if old is not None:
        old.addprevious(signature)
        header.remove(old)
    else:  # schema order: after PrescriberOrderNumber, before the order groups
        after = header.find("PrescriberOrderNumber")
        assert after is not None
        after.addnext(signature)
    body = etree.tostring(root_el, encoding="UTF-8", pretty_print=True)
    signed = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    if tamper is not None:
        assert tamper[0] in signed
        signed = signed.replace(tamper[0], tamper[1], 1)
    return signed
