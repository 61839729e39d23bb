"""Revocation by certificate revocation list (RFC 5280 §5), behind a small port.

Each certificate of a practitioner's path but the root is looked up in a CRL its issuer
signed: one the operator configured (``TELEPHARM_EPCS_CRLS``), else one fetched from the
certificate's CRL distribution point through a :class:`CrlFetcher`. A fetched CRL is kept
until its ``nextUpdate``, then fetched again; a CRL without ``nextUpdate``, out of date, not
signed by the issuer, or that cannot be fetched leaves the certificate's status unknown:
:class:`CrlUnavailable`, never "not revoked".
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from cryptography import x509

__all__ = ["CrlCache", "CrlFetcher", "CrlUnavailable", "Revoked", "check_path", "load_crls"]

_PEM: Final = b"-----BEGIN X509 CRL-----"
#: the most distribution points tried for one certificate
MAX_POINTS: Final = 4


class CrlUnavailable(Exception):
    """The revocation status cannot be known (the text says why; never a URL's credentials)."""


class CrlFetcher(Protocol):
    """Fetches the CRL at a distribution point: its bytes (DER or PEM), or raises
    :class:`CrlUnavailable`."""

    def fetch(self, url: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Revoked:
    subject: str
    serial: int
    revoked_at: dt.datetime
    crl_source: str


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if _PEM in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise CrlUnavailable("the CRL cannot be read") from None


def load_crls(path: Path) -> tuple[x509.CertificateRevocationList, ...]:
    """The CRLs in a file or directory (``.crl``, ``.pem`` or ``.der``), DER or PEM each."""
    files = (
        sorted(p for p in path.iterdir() if p.suffix.lower() in {".crl", ".pem", ".der"})
        if path.is_dir()
        else [path]
    )
    return tuple(parse_crl(file.read_bytes()) for file in files)


class CrlCache:
    """Fetched CRLs by URL, each kept until its ``nextUpdate``; safe to share between threads.

    A failed fetch is remembered for ``retry_after`` seconds: a distribution point that is
    down costs one timeout, not one per prescription while it stays down.
    """

    def __init__(self, fetcher: CrlFetcher, retry_after: float = 60.0) -> None:
        self._fetcher = fetcher
        self._retry_after = dt.timedelta(seconds=retry_after)
        self._kept: dict[str, x509.CertificateRevocationList] = {}
        self._failed: dict[str, tuple[dt.datetime, str]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, now: dt.datetime) -> x509.CertificateRevocationList:
        with self._lock:
            kept = self._kept.get(url)
            failed = self._failed.get(url)
        if kept is not None and _current(kept, now):
            return kept
        if failed is not None and now < failed[0] + self._retry_after:
            raise CrlUnavailable(f"{failed[1]} (at {failed[0].isoformat()}; not retried yet)")
        try:
            crl = parse_crl(self._fetcher.fetch(url))
        except CrlUnavailable as exc:
            with self._lock:
                self._failed[url] = (now, str(exc))
            raise
        with self._lock:
            self._kept[url] = crl
            self._failed.pop(url, None)
        return crl


def _current(crl: x509.CertificateRevocationList, now: dt.datetime) -> bool:
    following = crl.next_update_utc
    return following is not None and crl.last_update_utc <= now < following


def _points(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.lower().startswith(("http://", "https://"))
    ]
    return urls[:MAX_POINTS]


def _usable(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, now: dt.datetime
) -> str | None:
    """Why ``crl`` cannot tell ``issuer``'s certificates' status, or None if it can."""
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        return "the CRL is not signed by the certificate's issuer"
    if crl.next_update_utc is None:
        return "the CRL has no nextUpdate"
    if not _current(crl, now):
        return f"the CRL is out of date (nextUpdate {crl.next_update_utc.isoformat()})"
    return None


def _crl_for(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    configured: Iterable[x509.CertificateRevocationList],
    cache: CrlCache | None,
    now: dt.datetime,
) -> tuple[x509.CertificateRevocationList, str]:
    problems: list[str] = []
    for crl in configured:
        if crl.issuer == issuer.subject:
            problem = _usable(crl, issuer, now)
            if problem is None:
                return crl, "configured"
            problems.append(f"configured: {problem}")
    for url in _points(cert):
        if cache is None:
            break
        try:
            crl = cache.get(url, now)
        except CrlUnavailable as exc:
            problems.append(f"{url}: {exc}")
            continue
        problem = _usable(crl, issuer, now)
        if problem is None:
            return crl, url
        problems.append(f"{url}: {problem}")
    if not problems:
        problems.append("no configured CRL and no http(s) CRL distribution point")
    subject = cert.subject.rfc4514_string()
    raise CrlUnavailable(f"no usable CRL for {subject}: {'; '.join(problems)}")


def check_path(
    path: Sequence[x509.Certificate],
    configured: Iterable[x509.CertificateRevocationList],
    cache: CrlCache | None,
    now: dt.datetime,
) -> Revoked | None:
    """The first certificate of ``path`` (leaf first, root last; the root is not checked)
    that its issuer's CRL lists, or None; raises :class:`CrlUnavailable`."""
    configured = tuple(configured)
    for cert, issuer in itertools.pairwise(path):
        crl, source = _crl_for(cert, issuer, configured, cache, now)
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            return Revoked(
                cert.subject.rfc4514_string(),
                cert.serial_number,
                entry.revocation_date_utc,
                source,
            )
    return None
