"""Replies the hub sends: Status, Error and Verify (NCPDP SCRIPT Standard 2017071).

Every reply swaps the request's To and From, carries a new ``MessageID``, relates to the
request's ``MessageID`` when it is known, names the hub in ``SenderSoftware``, has ``SentTime`` in
UTC with ``Z``, and is itself valid SCRIPT 2017071 (it parses with ``parse_message``); the one
exception is the Error that answers SCRIPT 10.6, written in 10.6 for its sender. Replies
are small and fixed in shape, so they are written as text, which costs a tenth of building an
lxml tree; every value goes through :func:`_escape`. Everything is printable ASCII (the
Standard's ``an``): identifiers that are not are never echoed, and descriptions are stripped of
control characters, transliterated to ASCII (:func:`clean_text`) and truncated. A party without
``Qualifier`` is answered without one.

For a request too broken to parse, :func:`salvage_reply_context` recovers To, From and MessageID
from the raw bytes with bounded regular expressions (never an XML parser) so that even an
``Error`` 900/500 can be addressed and related.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import unicodedata
from typing import Final

from eprescribe.ncpdp.error import ERROR_CODES
from eprescribe.ncpdp.errors import Script106Error, ScriptRejection
from eprescribe.ncpdp.header import Header
from eprescribe.ncpdp.status import STATUS_CODES, STATUS_DESCRIPTION_MAX
from eprescribe.ncpdp.types import PARTY_QUALIFIERS, PARTY_VALUE_MAX, Party, SenderSoftware
from eprescribe.ncpdp.verify import VERIFY_CODE

__all__ = [
    "ERROR_DESCRIPTION_MAX",
    "ReplyContext",
    "build_error",
    "build_error_10_6",
    "build_rejection",
    "build_status",
    "build_verify",
    "reply_context",
    "salvage_reply_context",
    "salvage_transaction",
]

#: The Standard leaves Error/Description unbounded; this keeps replies readable and bounded.
ERROR_DESCRIPTION_MAX: Final = 500
SCRIPT_VERSION: Final = "20170715"
_ID_MAX: Final = 35
_SALVAGE_WINDOW: Final = 64 * 1024
_OPEN: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<Message DatatypesVersion="{SCRIPT_VERSION}" TransportVersion="{SCRIPT_VERSION}"'
    f' TransactionDomain="SCRIPT" TransactionVersion="{SCRIPT_VERSION}"'
    f' StructuresVersion="{SCRIPT_VERSION}" ECLVersion="{SCRIPT_VERSION}">'
)
#: The longest ``Description`` the hub sends in a SCRIPT 10.6 Error (see build_error_10_6).
DESCRIPTION_10_6_MAX: Final = 70
_DESCRIPTION_CODE = re.compile(r"\d{3,4}", re.ASCII)
# An optional namespace prefix ("ns:"), the same in the start and end tags.
_PREFIX: Final = rb"((?:[A-Za-z_][\w.-]{0,30}:)?)"
_SALVAGE_PARTY: Final = {
    name: re.compile(rb"<%b%b\b([^<>]{0,256})>([^<>]{1,300})</\1%b\s*>" % (_PREFIX, name, name))
    for name in (b"To", b"From")
}
_SALVAGE_QUALIFIER = re.compile(rb"""\bQualifier\s*=\s*(["'])([^"'<>]{0,8})\1""")
_SALVAGE_MESSAGE_ID = re.compile(rb"<%bMessageID\s*>([^<>]{1,64})</\1MessageID\s*>" % _PREFIX)
_SALVAGE_BODY = re.compile(rb"<%bBody\b" % _PREFIX)
# Body's first child element, past whitespace and comments (bounded, never an XML parser)
_SALVAGE_TRANSACTION = re.compile(
    rb"<%bBody\b[^<>]{0,256}>\s{0,1024}(?:<!--(?:[^-]|-(?!->)){0,1024}-->\s{0,1024}){0,16}"
    rb"<%b([A-Za-z]{1,40})\b" % (_PREFIX, _PREFIX)
)


def _valid_identifier(value: str, limit: int) -> bool:
    """Printable ASCII (the Standard's ``an``), without ``&`` (never an entity reference)."""
    return 1 <= len(value) <= limit and value.isascii() and value.isprintable() and "&" not in value


@dataclasses.dataclass(frozen=True, slots=True)
class ReplyContext:
    """Who a reply goes to, who it comes from, and which request it answers."""

    to: Party
    from_: Party
    relates_to_message_id: str | None = None

    def __post_init__(self) -> None:
        relates = self.relates_to_message_id
        if relates is not None and not _valid_identifier(relates, _ID_MAX):
            raise ValueError("RelatesToMessageID must be printable ASCII an1..35")
        for party in (self.to, self.from_):
            if not (party.value.isascii() and party.value.isprintable()):
                raise ValueError("To and From must be printable ASCII")


def reply_context(header: Header) -> ReplyContext:
    """The context for answering a parsed request: To and From swapped."""
    return ReplyContext(to=header.from_, from_=header.to, relates_to_message_id=header.message_id)


def salvage_reply_context(data: bytes, fallback_to: Party, fallback_from: Party) -> ReplyContext:
    """The reply context of an unparseable request, from its first 64 KiB of raw bytes.

    Whatever cannot be found or does not validate falls back: the request's From (our To) to
    ``fallback_to``, its To (our From) to ``fallback_from``, its MessageID to ``None``.
    """
    window = data[:_SALVAGE_WINDOW]
    body = _SALVAGE_BODY.search(window)
    if body is not None:
        window = window[: body.start()]
    sender = _salvage_party(window, b"From")
    receiver = _salvage_party(window, b"To")
    return ReplyContext(
        to=sender or fallback_to,
        from_=receiver or fallback_from,
        relates_to_message_id=_salvage_message_id(window),
    )


def salvage_transaction(data: bytes) -> str | None:
    """The name of the transaction in an unparseable request's ``Body`` (its first child
    element, without a namespace prefix), if its first 64 KiB show one: a Status, Error or
    Verify the parser refused is still never answered with an Error."""
    match = _SALVAGE_TRANSACTION.search(data[:_SALVAGE_WINDOW])
    return None if match is None else match.group(3).decode("ascii")


def _salvage_party(window: bytes, name: bytes) -> Party | None:
    match = _SALVAGE_PARTY[name].search(window)
    if match is None:
        return None
    value = _decode(match.group(3))
    if value is None or not _valid_identifier(value, PARTY_VALUE_MAX):
        return None
    qualifier = _SALVAGE_QUALIFIER.search(match.group(2))
    if qualifier is None:  # the attribute is optional
        return Party(None, value)
    code = _decode(qualifier.group(2))
    return Party(code, value) if code in PARTY_QUALIFIERS else None


def _salvage_message_id(window: bytes) -> str | None:
    match = _SALVAGE_MESSAGE_ID.search(window)
    value = None if match is None else _decode(match.group(2))
    return value if value is not None and _valid_identifier(value, _ID_MAX) else None


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def build_status(
    ctx: ReplyContext,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    code: str = "000",
    description: str | None = None,
) -> bytes:
    """A Status reply (000 = accepted; 010 only where the hub is the ultimate receiver)."""
    if code not in STATUS_CODES:
        raise ValueError("unknown Status code")
    body = _leaf("Code", code)
    if description is not None:
        body += _optional_leaf("Description", clean_text(description, STATUS_DESCRIPTION_MAX))
    return _document(ctx, message_id, sent_time, software, f"<Status>{body}</Status>")


def build_error(
    ctx: ReplyContext,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    code: str,
    description_code: str | None,
    description: str | None,
) -> bytes:
    """An Error reply (900 rejected; 601/602 for the hub's own faults)."""
    if code not in ERROR_CODES:
        raise ValueError("unknown Error code")
    if description_code is not None and _DESCRIPTION_CODE.fullmatch(description_code) is None:
        raise ValueError("DescriptionCode must be 3 or 4 digits")
    body = _leaf("Code", code)
    if description_code is not None:
        body += _leaf("DescriptionCode", description_code)
    if description is not None:
        body += _optional_leaf("Description", clean_text(description, ERROR_DESCRIPTION_MAX))
    return _document(ctx, message_id, sent_time, software, f"<Error>{body}</Error>")


def build_verify(
    ctx: ReplyContext, *, message_id: str, sent_time: dt.datetime, software: SenderSoftware
) -> bytes:
    """A Verify reply (``VerifyStatus/Code`` 010), the answer to a ``ReturnReceipt``."""
    body = f"<Verify><VerifyStatus>{_leaf('Code', VERIFY_CODE)}</VerifyStatus></Verify>"
    return _document(ctx, message_id, sent_time, software, body)


def build_rejection(
    ctx: ReplyContext,
    rejection: ScriptRejection,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
) -> bytes:
    """The Error reply for a rejection: its code, description code and "detail: XPath".

    A SCRIPT 10.6 request is answered in 10.6 (:func:`build_error_10_6`): its sender could not
    read a 2017071 reply.
    """
    if isinstance(rejection, Script106Error):
        return build_error_10_6(
            ctx,
            rejection.namespace,
            message_id=message_id,
            sent_time=sent_time,
            software=software,
            description=_rejection_description(rejection),
        )
    return build_error(
        ctx,
        message_id=message_id,
        sent_time=sent_time,
        software=software,
        code=rejection.code,
        description_code=rejection.description_code,
        description=_rejection_description(rejection),
    )


def build_error_10_6(
    ctx: ReplyContext,
    namespace: str,
    *,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    description: str,
) -> bytes:
    """An ``Error`` 900 in SCRIPT 10.6, in the request's ``namespace``.

    The 10.6 header starts as 2017071's does (To, From, MessageID, RelatesToMessageID,
    SentTime, then SenderSoftware, which the Surescripts variant requires), and its Error is
    also Code, DescriptionCode (0..10), Description. No DescriptionCode is sent: 4040 is not
    confirmed in 10.6's code list from public material, and the element is optional. The
    Description says why, in at most 70 characters (SCRIPT's Status Description length, taken
    for 10.6's shared Description element so as never to exceed it).
    """
    body = _leaf("Code", "900") + _optional_leaf(
        "Description", clean_text(description, DESCRIPTION_10_6_MAX)
    )
    opening = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Message xmlns="{_escape(namespace, quote=True)}" version="010" release="006">'
    )
    return _document(ctx, message_id, sent_time, software, f"<Error>{body}</Error>", opening)


def _rejection_description(rejection: ScriptRejection) -> str:
    """``detail: xpath``, shortening the detail first so that the XPath survives truncation."""
    detail = clean_text(rejection.detail, ERROR_DESCRIPTION_MAX)
    xpath = clean_text(rejection.xpath or "", ERROR_DESCRIPTION_MAX)
    if not xpath:
        return detail
    room = ERROR_DESCRIPTION_MAX - len(xpath) - 2
    if room < 10:
        return xpath
    return f"{clean_text(detail, room) or 'rejected'}: {xpath}"


def clean_text(value: str, limit: int) -> str:
    """Printable ASCII only, at most ``limit`` chars: a description is of the Standard's ``an``
    type. Controls become spaces and runs collapse; accented letters lose their accents
    (``é`` becomes ``e``), other non-ASCII characters become ``?``."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value)
    if not cleaned.isascii():
        cleaned = "".join(
            ch if ch.isascii() else ("" if unicodedata.combining(ch) else "?")
            for ch in unicodedata.normalize("NFKD", cleaned)
        )
    cleaned = " ".join(cleaned.split())
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[: max(limit - 3, 0)].rstrip() + "..."


def _document(
    ctx: ReplyContext,
    message_id: str,
    sent_time: dt.datetime,
    software: SenderSoftware,
    body: str,
    opening: str = _OPEN,
) -> bytes:
    if not _valid_identifier(message_id, _ID_MAX):
        raise ValueError("MessageID must be printable ASCII an1..35")
    relates = ctx.relates_to_message_id
    return (
        f"{opening}<Header>{_party('To', ctx.to)}{_party('From', ctx.from_)}"
        f"{_leaf('MessageID', message_id)}"
        f"{'' if relates is None else _leaf('RelatesToMessageID', relates)}"
        f"{_leaf('SentTime', format_sent_time(sent_time))}{_software(software)}"
        f"</Header><Body>{body}</Body></Message>"
    ).encode()


def format_sent_time(moment: dt.datetime) -> str:
    """An aware datetime as ``xsd:dateTime`` in UTC with ``Z`` (milliseconds when non-zero)."""
    if moment.utcoffset() is None:
        raise ValueError("sent_time must be timezone-aware")
    utc = moment.astimezone(dt.UTC)
    spec = "milliseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _leaf(name: str, value: str) -> str:
    return f"<{name}>{_escape(value)}</{name}>"


def _optional_leaf(name: str, value: str) -> str:
    return _leaf(name, value) if value else ""  # an empty Description would violate an1..n


def _party(name: str, party: Party) -> str:
    if party.qualifier is None:  # the request's party had none: the reply names it the same way
        return f"<{name}>{_escape(party.value)}</{name}>"
    qualifier = _escape(party.qualifier, quote=True)
    return f'<{name} Qualifier="{qualifier}">{_escape(party.value)}</{name}>'


@functools.lru_cache(maxsize=8)
def _software(software: SenderSoftware) -> str:
    return (
        f"<SenderSoftware>{_leaf('SenderSoftwareDeveloper', software.developer)}"
        f"{_leaf('SenderSoftwareProduct', software.product)}"
        f"{_leaf('SenderSoftwareVersionRelease', software.version)}</SenderSoftware>"
    )


def _escape(value: str, *, quote: bool = False) -> str:
    """``value`` as XML character data (or a double-quoted attribute value). Every value is
    printable by then (Party, SenderSoftware, identifiers and :func:`clean_text` see to it), so
    nothing XML cannot carry reaches here."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace('"', "&quot;") if quote else value
