"""Verifying practitioners' signatures with real keys, certificates and CRLs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from eprescribe.epcs import CrlCache, CrlUnavailable, Outcome, TrustStore, Verifier
from eprescribe.ncpdp import parse_message
from tests.support.pki import DAY, NOW, Authority, root, sign_message
from tests.support.script_samples import newrx_xml

CRL_URL = "http://crl.test.invalid/intermediate.crl"
ROOT_CRL_URL = "http://crl.test.invalid/root.crl"


class Fetcher:
    """Serves CRLs from memory by URL, counting fetches; an unknown URL is unavailable."""

    def __init__(self, crls: dict[str, bytes]) -> None:
        self.crls = crls
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.crls:
            raise CrlUnavailable("HTTP 404")
        return self.crls[url]


@pytest.fixture
def ca() -> Authority:
    authority = root()
    authority.crl_url = ROOT_CRL_URL  # on the certificates it issues
    return authority


@pytest.fixture
def intermediate(ca: Authority) -> Authority:
    return ca.authority("Synthetic Intermediate CA", crl_url=CRL_URL)


def _verify(
    raw: bytes,
    store: TrustStore,
    fetcher: Fetcher | None = None,
    crls: tuple[x509.CertificateRevocationList, ...] = (),
    at: dt.datetime = NOW,
) -> tuple[Outcome, str, dict[str, object]]:
    signature = parse_message(raw).header.digital_signature
    assert signature is not None
    cache = CrlCache(fetcher) if fetcher else None
    found = Verifier(store, crls, cache).verify(raw, signature, at)
    return found.outcome, found.reason, found.evidence


def _signed(authority: Authority, **issue: dt.datetime) -> bytes:
    key, cert = authority.issue("Dr Synthetic Prescriber", **issue)  # type: ignore[arg-type]
    return sign_message(newrx_xml(controlled=True), key, cert, chain=(authority.cert,))


def test_valid_signature_through_an_intermediate_verifies(
    ca: Authority, intermediate: Authority
) -> None:
    fetcher = Fetcher({CRL_URL: intermediate.crl_der(), ROOT_CRL_URL: ca.crl_der()})
    outcome, reason, evidence = _verify(_signed(intermediate), TrustStore((ca.cert,)), fetcher)
    assert (outcome, reason) == (Outcome.VERIFIED, "the practitioner's signature verified")
    assert evidence["root"] == ca.cert.subject.rfc4514_string()
    assert evidence["signed_content"] == "exclusive C14N of /Message/Body"


def test_a_crl_is_fetched_once_until_its_next_update(
    ca: Authority, intermediate: Authority
) -> None:
    fetcher = Fetcher(
        {CRL_URL: intermediate.crl_der(next_update=NOW + DAY), ROOT_CRL_URL: ca.crl_der()}
    )
    verifier = Verifier(TrustStore((ca.cert,)), (), CrlCache(fetcher))
    raw = _signed(intermediate)
    signature = parse_message(raw).header.digital_signature
    assert signature is not None
    for _ in range(3):
        assert verifier.verify(raw, signature, NOW).verified
    assert fetcher.fetched == [CRL_URL, ROOT_CRL_URL]
    # past its nextUpdate the kept CRL is stale: fetched again (and now out of date itself)
    later = verifier.verify(raw, signature, NOW, now=NOW + 2 * DAY)
    assert fetcher.fetched == [CRL_URL, ROOT_CRL_URL, CRL_URL]
    assert later.outcome is Outcome.CRL_UNAVAILABLE
    assert "out of date" in later.reason


def test_tampered_content_is_a_digest_mismatch(ca: Authority, intermediate: Authority) -> None:
    key, cert = intermediate.issue("Dr Synthetic Prescriber")
    raw = sign_message(
        newrx_xml(controlled=True), key, cert, tamper=(b"<Value>60</Value>", b"<Value>600</Value>")
    )
    outcome, reason, _ = _verify(raw, TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.DIGEST_MISMATCH
    assert "altered" in reason


def test_whitespace_between_elements_is_not_signed(ca: Authority) -> None:
    intermediate = ca.authority("Synthetic Intermediate CA")
    key, cert = intermediate.issue("Dr Synthetic Prescriber")
    raw = sign_message(newrx_xml(controlled=True), key, cert, chain=(intermediate.cert,))
    compact = raw.replace(b"\n  ", b"").replace(b"\n", b"")
    crls = (intermediate.crl(), ca.crl())
    assert _verify(compact, TrustStore((ca.cert,)), crls=crls)[0] is Outcome.VERIFIED


def test_a_signature_by_another_key_is_bad(ca: Authority, intermediate: Authority) -> None:
    _, cert = intermediate.issue("Dr Synthetic Prescriber")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = sign_message(newrx_xml(controlled=True), other, cert, chain=(intermediate.cert,))
    outcome, reason, _ = _verify(raw, TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.BAD_SIGNATURE
    assert reason == "the signature does not verify with the practitioner's certificate"


def test_a_chain_to_another_root_is_untrusted(ca: Authority) -> None:
    stranger = root("Synthetic Stranger CA")
    outcome, reason, _ = _verify(_signed(stranger), TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.UNTRUSTED_CHAIN
    assert "Synthetic Stranger CA" in reason


def test_without_the_intermediate_the_chain_is_untrusted(
    ca: Authority, intermediate: Authority
) -> None:
    key, cert = intermediate.issue("Dr Synthetic Prescriber")
    raw = sign_message(newrx_xml(controlled=True), key, cert)  # leaf alone, base64 DER
    outcome, _, _ = _verify(raw, TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.UNTRUSTED_CHAIN


def test_a_revoked_certificate(ca: Authority, intermediate: Authority) -> None:
    key, cert = intermediate.issue("Dr Revoked Prescriber")
    intermediate.revoked.append(cert.serial_number)
    raw = sign_message(newrx_xml(controlled=True), key, cert, chain=(intermediate.cert,))
    fetcher = Fetcher({CRL_URL: intermediate.crl_der(), ROOT_CRL_URL: ca.crl_der()})
    outcome, reason, evidence = _verify(raw, TrustStore((ca.cert,)), fetcher)
    assert outcome is Outcome.REVOKED
    assert "Dr Revoked Prescriber" in reason
    assert evidence["crl"] == CRL_URL


def test_a_configured_crl_is_used_before_fetching(ca: Authority, intermediate: Authority) -> None:
    key, cert = intermediate.issue("Dr Revoked Prescriber")
    intermediate.revoked.append(cert.serial_number)
    raw = sign_message(newrx_xml(controlled=True), key, cert, chain=(intermediate.cert,))
    fetcher = Fetcher({})
    crls = (intermediate.crl(), ca.crl())
    outcome, _, evidence = _verify(raw, TrustStore((ca.cert,)), fetcher, crls=crls)
    assert (outcome, evidence["crl"], fetcher.fetched) == (Outcome.REVOKED, "configured", [])


def test_an_expired_certificate(ca: Authority, intermediate: Authority) -> None:
    raw = _signed(intermediate, not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    outcome, reason, _ = _verify(raw, TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.EXPIRED
    assert "expired" in reason


def test_an_unreachable_crl_is_said_so(ca: Authority, intermediate: Authority) -> None:
    outcome, reason, _ = _verify(_signed(intermediate), TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.CRL_UNAVAILABLE
    assert "HTTP 404" in reason


def test_a_crl_not_signed_by_the_issuer_is_unusable(ca: Authority, intermediate: Authority) -> None:
    impostor = Authority(ca.key, intermediate.cert)  # the right name, the wrong key
    fetcher = Fetcher({CRL_URL: impostor.crl_der(), ROOT_CRL_URL: ca.crl_der()})
    outcome, reason, _ = _verify(_signed(intermediate), TrustStore((ca.cert,)), fetcher)
    assert outcome is Outcome.CRL_UNAVAILABLE
    assert "not signed by the certificate's issuer" in reason


def test_unreadable_parts_are_malformed(ca: Authority, intermediate: Authority) -> None:
    raw = _signed(intermediate).replace(b"<DigestMethod>SHA256", b"<DigestMethod>SHA1")
    outcome, reason, _ = _verify(raw, TrustStore((ca.cert,)), Fetcher({}))
    assert outcome is Outcome.MALFORMED
    assert "SHA1" in reason


def test_a_failed_fetch_is_not_retried_at_once(ca: Authority, intermediate: Authority) -> None:
    fetcher = Fetcher({ROOT_CRL_URL: ca.crl_der()})  # the intermediate's CRL is missing
    verifier = Verifier(TrustStore((ca.cert,)), (), CrlCache(fetcher, retry_after=60))
    raw = _signed(intermediate)
    signature = parse_message(raw).header.digital_signature
    assert signature is not None
    first = verifier.verify(raw, signature, NOW)
    again = verifier.verify(raw, signature, NOW, now=NOW + dt.timedelta(seconds=30))
    assert (first.outcome, again.outcome) == (Outcome.CRL_UNAVAILABLE,) * 2
    assert "not retried yet" in again.reason
    assert fetcher.fetched == [CRL_URL]
    fetcher.crls[CRL_URL] = intermediate.crl_der()  # back up: tried again after the pause
    later = verifier.verify(raw, signature, NOW, now=NOW + dt.timedelta(seconds=61))
    assert later.verified
    assert fetcher.fetched == [CRL_URL, CRL_URL, ROOT_CRL_URL]
