"""A worker's batch of emails over one SMTP session (``SmtpEmail.send_many``), against a real
SMTP server (aiosmtpd) on loopback: one connection for the batch, a refused recipient does not
end it, a server away is a failure that may pass for each. Synthetic addresses only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from server.notifications.email import SESSION_MESSAGES, Email, SmtpConfig, SmtpEmail, message_id
from tests.support.processes import free_port
from tests.support.smtp import smtp_server

REFUSED = "gone.synthetic@example.net"


@dataclass
class Counting:
    """Counts the sessions (EHLO) and keeps what it takes; refuses one recipient."""

    sessions: int = 0
    received: list[Envelope] = field(default_factory=list)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 <gone.synthetic@example.net>: user unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def server() -> Iterator[tuple[Counting, int]]:
    with smtp_server(Counting()) as served:
        yield served


def emails(n: int, refused_at: int | None = None) -> list[Email]:
    return [
        Email(
            to=REFUSED if i == refused_at else f"pat{i}.synthetic@example.net",
            subject="Your refill is due",
            text="Hello,\n\nA refill of your prescription is due.\n",
            message_id=message_id(f"bench-{i}", "pharmacy.example.org"),
        )
        for i in range(n)
    ]


def channel(port: int) -> SmtpEmail:
    config = SmtpConfig("127.0.0.1", port, "none", sender="notify@pharmacy.example.org", timeout=5)
    return SmtpEmail(config)


def test_a_batch_goes_over_one_session_and_a_refused_recipient_does_not_end_it(
    server: tuple[Counting, int],
) -> None:
    handler, port = server
    with channel(port) as sender:
        outcomes = sender.send_many(emails(5, refused_at=2))
    assert [o.delivered for o in outcomes] == [True, True, False, True, True]
    assert outcomes[2].permanent
    assert outcomes[2].reason is not None
    assert "gone.synthetic" not in outcomes[2].reason  # the address redacted
    assert handler.sessions == 1
    assert len(handler.received) == 4


def test_a_long_batch_opens_a_session_every_session_messages(
    server: tuple[Counting, int],
) -> None:
    handler, port = server
    with channel(port) as sender:
        outcomes = sender.send_many(emails(SESSION_MESSAGES + 1))
    assert all(o.delivered for o in outcomes)
    assert handler.sessions == 2


def test_no_server_is_a_failure_that_may_pass_for_each() -> None:
    with channel(free_port()) as sender:
        outcomes = sender.send_many(emails(3))
    assert [(o.delivered, o.permanent) for o in outcomes] == [(False, False)] * 3
