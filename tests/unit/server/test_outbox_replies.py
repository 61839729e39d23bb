"""What an attempt's HTTP answer means for an outbound message's delivery, and the backoff
between attempts."""

from __future__ import annotations

import datetime as dt

import pytest

from eprescribe.ncpdp import Party, SenderSoftware, build_error, build_status
from eprescribe.ncpdp.replies import ReplyContext, build_verify
from server.leases import jittered
from server.outbox.replies import read_answer

OURS = "0123456789abcdef0123456789abcdef"
SOFTWARE = SenderSoftware("Test", "Test EHR", "1.0")
WHEN = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def context(relates_to: str = OURS) -> ReplyContext:
    return ReplyContext(Party("P", "1234567"), Party("D", "9990001"), relates_to)


def status(code: str = "000", relates_to: str = OURS) -> bytes:
    return build_status(
        context(relates_to), message_id="R1", sent_time=WHEN, software=SOFTWARE, code=code
    )


def error(code: str, description_code: str) -> bytes:
    return build_error(
        context(),
        message_id="R2",
        sent_time=WHEN,
        software=SOFTWARE,
        code=code,
        description_code=description_code,
        description="synthetic",
    )


@pytest.mark.parametrize("code", ["000", "010"])
def test_status_accepted_is_delivered(code: str) -> None:
    outcome = read_answer(200, status(code), OURS)
    assert outcome.delivered
    assert outcome.reply is not None
    assert (outcome.reply.transaction, outcome.reply.code, outcome.reply.message_id) == (
        "Status",
        code,
        "R1",
    )


def test_verify_is_delivered() -> None:
    body = build_verify(context(), message_id="R3", sent_time=WHEN, software=SOFTWARE)
    assert read_answer(200, body, OURS).delivered


def test_a_duplicate_is_delivered_already() -> None:
    outcome = read_answer(200, error("900", "220"), OURS)
    assert outcome.delivered
    assert outcome.reply is not None
    assert outcome.reply.description_code == "220"


@pytest.mark.parametrize(
    ("code", "permanent"), [("600", False), ("601", False), ("602", False), ("700", True)]
)
def test_errors_retry_or_dead_letter_by_code(code: str, permanent: bool) -> None:
    outcome = read_answer(200, error(code, "2000"), OURS)
    assert not outcome.delivered
    assert outcome.permanent is permanent
    assert outcome.error == f"Error {code}/2000"


def test_a_rejection_is_permanent() -> None:
    outcome = read_answer(200, error("900", "2000"), OURS)
    assert (outcome.delivered, outcome.permanent) == (False, True)


@pytest.mark.parametrize(
    ("status_code", "permanent"), [(500, False), (503, False), (429, False), (408, False),
                                   (401, True), (415, True), (404, True)]
)  # fmt: skip
def test_http_failures(status_code: int, permanent: bool) -> None:
    outcome = read_answer(status_code, b"", OURS)
    assert (outcome.delivered, outcome.permanent, outcome.error) == (
        False,
        permanent,
        f"HTTP {status_code}",
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "the reply is not valid SCRIPT"),
        (b"<html>ok</html>", "the reply is not valid SCRIPT"),
        (status(relates_to="someone-else"), "the reply relates to another message"),
    ],
)
def test_what_is_no_reply_to_this_message_is_retried(body: bytes, error: str) -> None:
    outcome = read_answer(200, body, OURS)
    assert (outcome.delivered, outcome.permanent) == (False, False)
    assert outcome.error is not None
    assert outcome.error.startswith(error)


def test_backoff_doubles_up_to_the_longest_with_jitter_in_the_upper_half() -> None:
    for attempts, full in ((1, 2.0), (2, 4.0), (3, 8.0), (10, 300.0), (50, 300.0)):
        waits = [jittered(2.0, 300.0, attempts) for _ in range(50)]
        assert all(full / 2 <= wait <= full for wait in waits)
        assert len(set(waits)) > 1
