"""The email channel against a real SMTP server (aiosmtpd) on loopback: what arrives, and what
each refusal means for the message."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.notifications import Outcome
from server.notifications.email import Email, SmtpConfig, SmtpEmail, failure, message_id
from tests.support.processes import free_port
from tests.support.smtp import smtp_server

PATIENT = "pat.synthetic@example.net"
SENDER = "Main St Pharmacy <notify@pharmacy.example.org>"


@dataclass
class Mailbox:
    """An SMTP server's handler: keeps what it takes; refuses recipients or data on demand."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    received: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued as SYNTH1"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server(Mailbox()) as served:
        yield served


def channel(port: int, timeout: float = 5.0) -> SmtpEmail:
    return SmtpEmail(SmtpConfig("127.0.0.1", port, "none", sender=SENDER, timeout=timeout))


def send(port: int, message: Email, timeout: float = 5.0) -> Outcome:
    """``message`` sent through a channel of its own, closed after it."""
    with channel(port, timeout) as sender:
        return sender.send(message)


def notification(**changes: str | None) -> Email:
    values: dict[str, str | None] = {
        "to": PATIENT,
        "subject": "Your prescription is ready",
        "text": "Hello Pat,\n\nYour prescription is ready.\n",
        "message_id": message_id("0b4c5a4e-2f3e-4d8e-9d58-2f5c6f1f0a11", "pharmacy.example.org"),
        "html": "<p>Hello Pat,</p><p>Your prescription is ready.</p>",
        "unsubscribe_url": "https://hub.example.org/unsubscribe/opaque-token",
    }
    values.update(changes)
    return Email(**values)  # type: ignore[arg-type]


def test_a_delivered_message_arrives_with_its_headers_and_both_bodies(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    outcome = send(port, notification())
    assert outcome.delivered
    assert not outcome.permanent
    assert outcome.reply == "2.0.0 Ok: queued as SYNTH1"
    (envelope,) = handler.received
    assert envelope.mail_from == "notify@pharmacy.example.org"
    assert envelope.rcpt_tos == [PATIENT]
    assert isinstance(envelope.content, bytes)
    received = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert received["Message-ID"] == "<0b4c5a4e-2f3e-4d8e-9d58-2f5c6f1f0a11@pharmacy.example.org>"
    assert received["From"] == SENDER
    assert received["To"] == PATIENT
    assert received["Subject"] == "Your prescription is ready"
    assert received["List-Unsubscribe"] == "<https://hub.example.org/unsubscribe/opaque-token>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Date"] is not None
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(("plain",))
    markup = received.get_body(("html",))
    assert plain is not None
    assert markup is not None
    assert (
        plain.get_content().replace("\r\n", "\n") == "Hello Pat,\n\nYour prescription is ready.\n"
    )
    assert "<p>Your prescription is ready.</p>" in markup.get_content()


def test_a_retry_sends_the_same_message_id(mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    with channel(port) as sender:
        assert sender.send(notification()).delivered
        assert sender.send(notification()).delivered
    ids = {email.message_from_bytes(e.content)["Message-ID"] for e in handler.received}  # type: ignore[arg-type]
    assert len(handler.received) == 2
    assert len(ids) == 1


def test_plain_text_only_and_no_unsubscribe_for_a_sign_in_code(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    assert send(port, notification(html=None, unsubscribe_url=None)).delivered
    received = email.message_from_bytes(handler.received[0].content, policy=email.policy.default)  # type: ignore[arg-type]
    assert received.get_content_type() == "text/plain"
    assert received["List-Unsubscribe"] is None
    assert received["List-Unsubscribe-Post"] is None


def test_a_refused_recipient_is_permanent_and_the_reason_keeps_no_address(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    handler.rcpt_reply = f"550 5.1.1 <{PATIENT}>: Recipient address rejected: unknown user"
    outcome = send(port, notification())
    assert not outcome.delivered
    assert outcome.permanent
    assert outcome.reason is not None
    assert outcome.reason.startswith("recipient refused: 550 5.1.1")
    assert PATIENT not in outcome.reason
    assert "<address>" in outcome.reason
    assert handler.received == []


@pytest.mark.parametrize(
    ("rcpt", "data"),
    [("450 4.2.1 Mailbox busy, try again later", None), (None, "451 4.3.0 Try again later")],
)
def test_a_4xx_answer_may_pass(
    mailbox: tuple[Mailbox, int], rcpt: str | None, data: str | None
) -> None:
    handler, port = mailbox
    handler.rcpt_reply, handler.data_reply = rcpt, data
    outcome = send(port, notification())
    assert not outcome.delivered
    assert not outcome.permanent
    assert outcome.reason is not None
    assert " 45" in outcome.reason


def test_a_5xx_to_the_message_is_permanent(mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    handler.data_reply = "554 5.7.1 Message rejected as spam"
    outcome = send(port, notification())
    assert outcome.permanent
    assert outcome.reason == "message refused: 554 5.7.1 Message rejected as spam"


def test_nothing_listening_may_pass() -> None:
    outcome = send(free_port(), notification())
    assert not outcome.delivered
    assert not outcome.permanent
    assert outcome.reason is not None
    assert outcome.reason.startswith("could not connect")


def test_a_server_that_never_answers_times_out_and_may_pass() -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the backlog) and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        outcome = send(silent.getsockname()[1], notification(), timeout=0.5)
    assert outcome == failure(TimeoutError())
    assert not outcome.permanent


def test_starttls_the_server_does_not_offer_is_permanent(mailbox: tuple[Mailbox, int]) -> None:
    _, port = mailbox
    config = SmtpConfig("127.0.0.1", port, "starttls", sender=SENDER, timeout=5)
    with SmtpEmail(config) as smtp:
        outcome = smtp.send(notification())
    assert outcome.permanent
    assert not outcome.delivered
    assert outcome.reason == (
        "not supported by the server: SMTP STARTTLS extension not supported by server."
    )


@pytest.mark.parametrize(
    "changes",
    [{"to": "not an address"}, {"to": f"{PATIENT}\r\nBcc: x@example.org"}, {"subject": "a\nb"}],
)
def test_a_message_that_cannot_be_built_is_permanent_without_connecting(
    changes: dict[str, str],
) -> None:
    outcome = send(free_port(), notification(**changes))
    assert outcome.permanent
    assert not outcome.delivered


def test_message_ids_and_unsubscribe_urls_are_checked() -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        notification(message_id="no-brackets@example.org")
    with pytest.raises(ValueError, match="https"):
        notification(unsubscribe_url="http://hub.example.org/unsubscribe/x")


# -- TLS and authentication ---------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the server's, and the client's only trust
    anchor (SSL_CERT_FILE, which the default TLS context reads)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Synthetic SMTP relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "cert.pem", folder / "key.pem"


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"hub", b"right")
    return AuthResult(success=good, handled=False)  # not handled: aiosmtpd answers 535


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    return _server_context(certificate)


def _serve(handler: Mailbox, **kwargs: object) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, port


def test_implicit_tls_with_a_verified_certificate(trusted: ssl.SSLContext) -> None:
    handler = Mailbox()
    controller, port = _serve(handler, ssl_context=trusted)
    try:
        config = SmtpConfig("127.0.0.1", port, "tls", sender=SENDER, timeout=5)
        with SmtpEmail(config) as smtp:
            outcome = smtp.send(notification())
    finally:
        controller.stop()
    assert outcome.delivered
    assert len(handler.received) == 1


@pytest.mark.parametrize(("password", "delivered"), [("right", True), ("wrong", False)])
def test_starttls_then_authentication(
    trusted: ssl.SSLContext, password: str, delivered: bool
) -> None:
    handler = Mailbox()
    controller, port = _serve(
        handler,
        tls_context=trusted,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    try:
        config = SmtpConfig("127.0.0.1", port, "starttls", "hub", password, SENDER, 5)
        with SmtpEmail(config) as smtp:
            outcome = smtp.send(notification())
    finally:
        controller.stop()
    assert outcome.delivered is delivered
    if not delivered:
        assert outcome.permanent
        assert outcome.reason is not None
        assert outcome.reason.startswith("authentication failed: 535")


def test_a_certificate_the_client_does_not_trust_may_pass(
    certificate: tuple[Path, Path],
) -> None:
    """The system's roots do not know the relay's certificate: the handshake fails, which an
    operator (or the relay's renewal) may fix within the retries."""
    handler = Mailbox()
    controller, port = _serve(handler, ssl_context=_server_context(certificate))
    try:
        config = SmtpConfig("127.0.0.1", port, "tls", sender=SENDER, timeout=5)
        with SmtpEmail(config) as smtp:
            outcome = smtp.send(notification())
    finally:
        controller.stop()
    assert not outcome.delivered
    assert not outcome.permanent
    assert handler.received == []
