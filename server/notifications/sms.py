"""The SMS channel: a small provider protocol, an adapter for a Twilio-style HTTP API, the
provider's signed delivery-status callbacks and the patient's inbound keywords.

**Sending** (:class:`TwilioSms`): ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``,
form-encoded ``To``, ``From``, ``Body`` and ``StatusCallback``, HTTP basic auth ``sid:token``;
the answer's JSON ``sid`` and ``status``. It is blocking, on urllib3 (a dependency of the hub
already): its caller is a Celery worker, which has no event loop, and a kept-open connection
pool with connect and read timeouts and no retries of its own is what the SCRIPT outbox's
deliveries already use (``server/outbox/delivery.py``). An aiohttp client would need an event
loop started for each message and a session that could not outlive it.

Outcomes, as the outbox classifies them: delivered (the provider took it: ``queued``,
``accepted``…; whether the handset got it comes later, in a status callback); may pass, tried
again: a refused connection, a timeout, HTTP 408, 425, 429 and 5xx, a 2xx answer without a
message sid; permanent: any other 4xx (a number the provider refuses, a recipient who replied
STOP to the provider: error 21610, wrong credentials), a number that is not E.164, a body too
long. The caller's message id goes as ``Idempotency-Key`` for providers that de-duplicate on
it; Twilio's Messages API does not, so a retry after a timeout the provider had in fact taken
may send the text twice.

**Callbacks.** The provider signs each form post it makes to the hub in
``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, the full URL + each POST parameter, sorted
by name, as name then value)). :func:`verify_signature` checks it in constant time;
:func:`parse_status` reads a delivery-status callback and :func:`parse_inbound` a text a
patient sent, with the carriers' keywords (STOP and its synonyms, START, HELP) recognised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ..outgoing import Outgoing
from ..settings import Settings
from . import Outcome

log = logging.getLogger(__name__)
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: the longest body the API takes (Twilio: 1600 characters)
MAX_BODY = 1600
#: HTTP statuses worth another attempt (as the outbox's)
TRANSIENT_HTTP = frozenset({408, 425, 429})
#: the provider's error code when the recipient replied STOP to it
UNSUBSCRIBED_ERROR = 21610
REPLY_MAX = 64 * 1024


@dataclass(frozen=True, slots=True)
class Sms:
    """One text to one number; ``message_id`` is ours (the outbox row's), the same for every
    attempt."""

    to: str
    body: str
    message_id: str
    #: where the provider posts the message's delivery status (the hub's callback route)
    status_callback: str | None = None


class SmsProvider(Protocol):
    """Sends one SMS; never raises for the provider's answer."""

    def send(self, sms: Sms) -> Outcome: ...


class TwilioSms:
    """A Twilio-style Messages API (Twilio itself, or a compatible provider or test double)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid)}/Messages.json"
        self._sender = sender
        self._auth = urllib3.make_headers(basic_auth=f"{account_sid}:{auth_token}")
        # never a retry of its own (a failed attempt is the outbox's to try again) nor a redirect
        self._http = Outgoing(timeout, maxsize=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSms:
        return cls(
            settings.sms_account_sid,
            settings.sms_auth_token,
            settings.sms_from,
            settings.sms_api_url,
            settings.sms_timeout,
        )

    def close(self) -> None:
        self._http.clear()

    def send(self, sms: Sms) -> Outcome:
        if not E164.fullmatch(sms.to):
            return Outcome.refused("the number is not in E.164 form")
        if not sms.body or len(sms.body) > MAX_BODY:
            return Outcome.refused(f"the body must have 1 to {MAX_BODY} characters")
        fields = {"To": sms.to, "From": self._sender, "Body": sms.body}
        if sms.status_callback:
            fields["StatusCallback"] = sms.status_callback
        headers = {
            **self._auth,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "Idempotency-Key": sms.message_id,
        }
        try:
            response = self._http.post(self._url, urlencode(fields), headers)
            body = response.read(REPLY_MAX + 1)
        except (NewConnectionError, NameResolutionError) as exc:
            return Outcome.retry(f"could not connect ({type(exc).__name__})")
        except urllib3.exceptions.TimeoutError:
            return Outcome.retry("timed out")
        except urllib3.exceptions.HTTPError as exc:
            return Outcome.retry(f"the attempt failed ({type(exc).__name__})")
        if len(body) > REPLY_MAX:
            response.close()  # the rest unread: the connection is not used again
        else:
            response.release_conn()
        outcome = read_answer(response.status, body[:REPLY_MAX])
        log.info("sms %s: %s", sms.message_id, outcome.provider_status or outcome.reason)
        return outcome


def read_answer(status: int, body: bytes) -> Outcome:
    """What the API's answer means: its JSON ``sid`` and ``status`` on success, else the HTTP
    status and the provider's error code (never its message: it may quote the number)."""
    document = _json(body)
    if 200 <= status < 300:
        sid, state = document.get("sid"), document.get("status")
        if not isinstance(sid, str) or not sid:
            return Outcome.retry(f"HTTP {status} without a message sid")
        return Outcome.sent(f"HTTP {status}", sid, state if isinstance(state, str) else None)
    code = document.get("code")
    reason = f"HTTP {status}" + (f" (error {code})" if isinstance(code, int) else "")
    if status in TRANSIENT_HTTP or status >= 500:
        return Outcome.retry(reason)
    return Outcome.refused(reason)


def _json(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


# -- callbacks -------------------------------------------------------------------------------

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def signature(url: str, params: Params, token: str) -> str:
    """``X-Twilio-Signature`` of a form post of ``params`` to ``url``: base64 of HMAC-SHA1
    keyed with the auth token over the URL followed by each parameter, sorted by name, as its
    name then its value (a name given more than once: its distinct values sorted)."""
    pairs = params.items() if isinstance(params, Mapping) else params
    signed = url + "".join(name + value for name, value in sorted(set(pairs)))
    digest = hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(url: str, params: Params, signature_header: str, token: str) -> bool:
    """Whether ``signature_header`` signs this post with ``token`` (compared in constant
    time). The provider may sign the URL with or without the scheme's default port, so both
    are tried. A missing token or signature verifies nothing."""
    if not token or not signature_header:
        return False
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    given = signature_header.encode()
    return any(
        hmac.compare_digest(signature(candidate, pairs, token).encode(), given)
        for candidate in _with_and_without_port(url)
    )


def _with_and_without_port(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if default is None or parts.hostname is None or parts.port not in (None, default):
        return [url]
    netloc = parts.netloc
    other = netloc.rsplit(":", 1)[0] if parts.port else f"{netloc}:{default}"
    return [url, urlunsplit(parts._replace(netloc=other))]


class DeliveryStatus(StrEnum):
    """The provider's ``MessageStatus`` values a callback may carry that the hub acts on."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """A delivery-status callback: which message (the provider's sid), its status as sent
    (any string: providers add statuses), the provider's error code when it failed."""

    message_sid: str
    status: str
    error_code: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status in (DeliveryStatus.DELIVERED, DeliveryStatus.READ)

    @property
    def failed(self) -> bool:
        return self.status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)


class CallbackError(ValueError):
    """A callback without what it must carry."""


def parse_status(params: Mapping[str, str]) -> StatusCallback:
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    if not sid or not status:
        raise CallbackError("a status callback needs MessageSid and MessageStatus")
    return StatusCallback(sid, status.lower(), params.get("ErrorCode") or None)


class Keyword(StrEnum):
    """What a patient's one-word text asks, as US carriers define the keywords (CTIA), with
    the FCC's revocation words (its 2024 consent order: REVOKE, OPT OUT) and INFO for help."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


KEYWORDS: Mapping[str, Keyword] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"),
        Keyword.OPT_OUT,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}


def keyword(body: str) -> Keyword | None:
    """The keyword ``body`` is, if the whole text is one (any case, surrounding spaces and
    a final full stop or exclamation mark ignored): "stop" is, "please stop texting" is not."""
    return KEYWORDS.get(" ".join(body.strip().rstrip(".!").split()).upper())


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A text a patient sent to the hub's number (number and words: never logged)."""

    sender: str = field(repr=False)
    body: str = field(repr=False)
    message_sid: str = ""
    keyword: Keyword | None = None


def parse_inbound(params: Mapping[str, str]) -> InboundSms:
    sender, body = params.get("From", ""), params.get("Body")
    if not sender or body is None:
        raise CallbackError("an inbound message needs From and Body")
    return InboundSms(sender, body, params.get("MessageSid", ""), keyword(body))


class MemorySms:
    """Keeps what it is given (development and tests): every message delivered."""

    def __init__(self) -> None:
        self.sent: list[Sms] = []

    def send(self, sms: Sms) -> Outcome:
        self.sent.append(sms)
        return Outcome.sent("kept in memory", f"SM{len(self.sent):032x}", "queued")
