"""What an attempt's HTTP answer means for the message's delivery (NCPDP SCRIPT 2017071 §6).

The receiver answers a message synchronously with ``Status``, ``Verify`` or ``Error``, read
with the hub's own parser. The hub never answers a Status or an Error with an Error: a reply
only moves the delivery state of the message it relates to.

- ``Status`` 000 or 010, or ``Verify``: delivered.
- ``Error`` 900 with DescriptionCode 220 (duplicate MessageID): the receiver already has this
  message (an earlier attempt reached it, its answer did not reach the hub): delivered.
- ``Error`` 600 (communication), 601 (unable to process now), 602 (system error): may pass,
  tried again. ``Error`` 700 (configuration) or 900 (rejected): final, dead-lettered.
- HTTP 408, 425, 429 and 5xx, a timeout, a refused connection, or a 2xx answer that is not a
  SCRIPT reply to this message: tried again. Any other HTTP 4xx (the endpoint refuses the
  hub: credentials, content type): final, an operator retries once fixed.
"""

from __future__ import annotations

from eprescribe.ncpdp import Error, Message, ScriptRejection, Status, Verify, parse_message

from .store import Attempt, Reply

#: Status codes that mean the receiver took the message
ACCEPTED = frozenset({"000", "010"})
#: Error codes that may pass
TRANSIENT_ERRORS = frozenset({"600", "601", "602"})
#: HTTP statuses worth another attempt
TRANSIENT_HTTP = frozenset({408, 425, 429})
DUPLICATE = "220"


def read_answer(status: int, body: bytes, message_id: str) -> Attempt:
    """The outcome of an attempt whose HTTP answer was ``status`` with ``body``."""
    if status in TRANSIENT_HTTP or status >= 500:
        return Attempt(False, f"HTTP {status}")
    if not 200 <= status < 300:
        return Attempt(False, f"HTTP {status}", permanent=True)
    try:
        message = parse_message(body)
    except ScriptRejection as exc:
        where = f"{exc.description_code} at {exc.xpath}"
        return Attempt(False, f"the reply is not valid SCRIPT ({where})")
    if message.header.relates_to_message_id != message_id:
        return Attempt(False, "the reply relates to another message")
    return read_reply(message, body)


def read_reply(message: Message, raw: bytes) -> Attempt:
    """What a parsed Status, Error or Verify (``raw``: its bytes) says of the message it
    relates to: the synchronous answer to an attempt, or one posted later to the intake."""
    reply = Reply(
        message.transaction,
        getattr(message.body, "code", None),
        _first(getattr(message.body, "description_codes", ())),
        message.header.message_id,
        raw,
    )
    return _outcome(message.body, reply)


def _outcome(body: object, reply: Reply) -> Attempt:
    if isinstance(body, Verify):
        return Attempt(True, reply=reply)
    if isinstance(body, Status):
        if body.code in ACCEPTED:
            return Attempt(True, reply=reply)
        return Attempt(False, f"Status {body.code}", reply=reply)
    if isinstance(body, Error):
        if DUPLICATE in body.description_codes:
            return Attempt(True, reply=reply)
        what = f"Error {body.code}/{reply.description_code or '-'}"
        return Attempt(False, what, permanent=body.code not in TRANSIENT_ERRORS, reply=reply)
    return Attempt(False, f"{reply.transaction} is not a reply")


def _first(codes: tuple[str, ...]) -> str | None:
    return codes[0] if codes else None
