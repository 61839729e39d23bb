"""The SMS adapter against a real local HTTP server playing the provider, and the provider's
signed callbacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.notifications.sms import (
    CallbackError,
    Keyword,
    Sms,
    TwilioSms,
    keyword,
    parse_inbound,
    parse_status,
    signature,
    verify_signature,
)
from tests.support.processes import free_port

SID = "AC00000000000000000000000000000001"
TOKEN = "synthetic-auth-token"
FROM = "+15005550006"
PATIENT = "+15555550123"
CALLBACK = "https://hub.example.org/notifications/sms/status"

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Provider:
    """A Twilio-style Messages API: answers what the test sets, keeps what it was sent."""

    status: int = 201
    answer: dict[str, object] = field(
        default_factory=lambda: {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}
    )
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    async def messages(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(
            (request.path, {k: str(v) for k, v in form.items()}, dict(request.headers))
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response(self.answer, status=self.status)


@pytest.fixture
async def provider(aiohttp_server: ServerFactory) -> tuple[Provider, str]:
    fake = Provider()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages)
    server = await aiohttp_server(app)
    return fake, f"http://127.0.0.1:{server.port}"


def adapter(base: str, timeout: float = 5.0) -> TwilioSms:
    return TwilioSms(SID, TOKEN, FROM, base, timeout)


def text(**changes: str) -> Sms:
    values = {
        "to": PATIENT,
        "body": "Main St Pharmacy: your prescription is ready.",
        "message_id": "6a1f3d0e-9c1b-4a57-8a5e-0d9b1f8e2c44",
        "status_callback": CALLBACK,
    }
    return Sms(**(values | changes))


async def test_a_message_the_provider_takes_is_delivered_with_its_sid(
    provider: tuple[Provider, str],
) -> None:
    fake, base = provider
    outcome = await asyncio.to_thread(adapter(base).send, text())
    assert outcome.delivered
    assert (outcome.provider_id, outcome.provider_status) == (
        "SM0123456789abcdef0123456789abcdef",
        "queued",
    )
    ((path, form, headers),) = fake.requests
    assert path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert form == {
        "To": PATIENT,
        "From": FROM,
        "Body": "Main St Pharmacy: your prescription is ready.",
        "StatusCallback": CALLBACK,
    }
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (
        headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    assert headers["Idempotency-Key"] == "6a1f3d0e-9c1b-4a57-8a5e-0d9b1f8e2c44"


@pytest.mark.parametrize(
    ("status", "answer", "permanent", "reason"),
    [
        (429, {"code": 20429, "message": "Too Many Requests"}, False, "HTTP 429 (error 20429)"),
        (500, {}, False, "HTTP 500"),
        (503, {"code": 20503}, False, "HTTP 503 (error 20503)"),
        (
            400,
            {"code": 21211, "message": f"The 'To' number {PATIENT} is not a valid phone number."},
            True,
            "HTTP 400 (error 21211)",
        ),
        (
            400,
            {"code": 21610, "message": "Attempt to send to unsubscribed recipient"},
            True,
            "HTTP 400 (error 21610)",
        ),
        (401, {"code": 20003}, True, "HTTP 401 (error 20003)"),
        (201, {"status": "queued"}, False, "HTTP 201 without a message sid"),
    ],
)
async def test_what_each_answer_means(
    provider: tuple[Provider, str],
    status: int,
    answer: dict[str, object],
    permanent: bool,
    reason: str,
) -> None:
    fake, base = provider
    fake.status, fake.answer = status, answer
    outcome = await asyncio.to_thread(adapter(base).send, text())
    assert (outcome.delivered, outcome.permanent, outcome.reason) == (False, permanent, reason)
    assert PATIENT not in (outcome.reason or "")  # the provider's words are not kept


async def test_a_provider_too_slow_times_out_and_may_pass(provider: tuple[Provider, str]) -> None:
    fake, base = provider
    fake.delay = 2.0
    outcome = await asyncio.to_thread(adapter(base, timeout=0.3).send, text())
    assert (outcome.delivered, outcome.permanent, outcome.reason) == (False, False, "timed out")


def test_nothing_listening_may_pass() -> None:
    outcome = adapter(f"http://127.0.0.1:{free_port()}").send(text())
    assert not outcome.delivered
    assert not outcome.permanent
    assert outcome.reason is not None
    assert outcome.reason.startswith("could not connect")


@pytest.mark.parametrize("changes", [{"to": "5555550123"}, {"body": ""}, {"body": "x" * 1601}])
def test_what_the_api_would_refuse_is_permanent_without_a_request(
    changes: dict[str, str],
) -> None:
    outcome = adapter("http://127.0.0.1:9").send(text(**changes))
    assert outcome.permanent
    assert not outcome.delivered


# -- signatures ----------------------------------------------------------------------------

#: the worked example of Twilio's request-validation documentation, used by its libraries' tests
EXAMPLE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
EXAMPLE_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
EXAMPLE_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def documented(url: str, params: dict[str, str], token: str) -> str:
    """The algorithm as documented, written out: the URL, then each name and value in name
    order, HMAC-SHA1 with the auth token, base64."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_the_documented_example_verifies() -> None:
    assert documented(EXAMPLE_URL, EXAMPLE_PARAMS, "12345") == EXAMPLE_SIGNATURE
    assert signature(EXAMPLE_URL, EXAMPLE_PARAMS, "12345") == EXAMPLE_SIGNATURE
    assert verify_signature(EXAMPLE_URL, EXAMPLE_PARAMS, EXAMPLE_SIGNATURE, "12345")
    # signed with or without the scheme's default port: both verify
    with_port = EXAMPLE_URL.replace(".com/", ".com:443/")
    assert verify_signature(with_port, EXAMPLE_PARAMS, EXAMPLE_SIGNATURE, "12345")


def test_repeated_parameters_sign_their_distinct_values_in_order() -> None:
    pairs = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert verify_signature(EXAMPLE_URL, pairs, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", "12345")


@pytest.mark.parametrize(
    ("url", "params", "sig", "token"),
    [
        (EXAMPLE_URL, EXAMPLE_PARAMS | {"Digits": "9999"}, EXAMPLE_SIGNATURE, "12345"),
        (EXAMPLE_URL + "&extra=1", EXAMPLE_PARAMS, EXAMPLE_SIGNATURE, "12345"),
        (EXAMPLE_URL, EXAMPLE_PARAMS, EXAMPLE_SIGNATURE, "54321"),
        (EXAMPLE_URL, EXAMPLE_PARAMS, "", "12345"),
        (EXAMPLE_URL, EXAMPLE_PARAMS, EXAMPLE_SIGNATURE, ""),
        (EXAMPLE_URL, EXAMPLE_PARAMS, "invalid 王", "12345"),
        (EXAMPLE_URL.replace(".com/", ".com:8443/"), EXAMPLE_PARAMS, EXAMPLE_SIGNATURE, "12345"),
    ],
)
def test_anything_changed_is_refused(
    url: str, params: dict[str, str], sig: str, token: str
) -> None:
    assert not verify_signature(url, params, sig, token)


async def test_a_status_callback_posted_and_signed_as_the_provider_does(
    aiohttp_server: ServerFactory,
) -> None:
    """A real form post to a real route, signed from the documented algorithm: verified, read;
    the same post with a value changed in flight: refused."""
    seen: list[tuple[bool, dict[str, str]]] = []

    async def status(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        url = str(request.url)
        seen.append(
            (
                verify_signature(url, form, request.headers.get("X-Twilio-Signature", ""), TOKEN),
                form,
            )
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/notifications/sms/status", status)
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}/notifications/sms/status?m=6a1f3d0e"
    form = {
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": SID,
        "To": PATIENT,
        "From": FROM,
    }
    async with aiohttp.ClientSession() as client:
        headers = {"X-Twilio-Signature": documented(url, form, TOKEN)}
        async with client.post(url, data=form, headers=headers) as response:
            assert response.status == 204
        async with client.post(
            url, data=form | {"MessageStatus": "delivered"}, headers=headers
        ) as response:
            assert response.status == 204
    (ok, received), (tampered, _) = seen
    assert ok
    assert not tampered
    callback = parse_status(received)
    assert (callback.message_sid, callback.status, callback.error_code) == (
        "SM0123456789abcdef0123456789abcdef",
        "undelivered",
        "30003",
    )
    assert callback.failed
    assert not callback.delivered


def test_status_callbacks_are_read() -> None:
    delivered = parse_status({"MessageSid": "SM1", "MessageStatus": "delivered", "ErrorCode": ""})
    assert delivered.delivered
    assert not delivered.failed
    assert delivered.error_code is None
    assert not parse_status({"MessageSid": "SM1", "MessageStatus": "sent"}).delivered
    with pytest.raises(CallbackError):
        parse_status({"MessageStatus": "delivered"})


# -- inbound keywords -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.OPT_OUT),
        ("stop", Keyword.OPT_OUT),
        ("  Stop. ", Keyword.OPT_OUT),
        ("STOPALL", Keyword.OPT_OUT),
        ("unsubscribe", Keyword.OPT_OUT),
        ("Cancel", Keyword.OPT_OUT),
        ("END", Keyword.OPT_OUT),
        ("quit!", Keyword.OPT_OUT),
        ("START", Keyword.OPT_IN),
        ("yes", Keyword.OPT_IN),
        ("UNSTOP", Keyword.OPT_IN),
        ("revoke", Keyword.OPT_OUT),
        ("Opt out", Keyword.OPT_OUT),
        ("OPT   OUT.", Keyword.OPT_OUT),
        ("optout", Keyword.OPT_OUT),
        ("help", Keyword.HELP),
        ("info", Keyword.HELP),
        ("please stop texting me", None),
        ("stop it", None),
        ("thanks", None),
        ("", None),
    ],
)
def test_carrier_keywords_are_the_whole_text(body: str, expected: Keyword | None) -> None:
    assert keyword(body) is expected


def test_an_inbound_text_is_read_and_keeps_the_patient_out_of_its_repr() -> None:
    inbound = parse_inbound({"From": PATIENT, "Body": "Stop", "MessageSid": "SM9"})
    assert (inbound.sender, inbound.keyword, inbound.message_sid) == (
        PATIENT,
        Keyword.OPT_OUT,
        "SM9",
    )
    assert PATIENT not in repr(inbound)
    assert "Stop" not in repr(inbound)
    with pytest.raises(CallbackError):
        parse_inbound({"Body": "STOP"})
