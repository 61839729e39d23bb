"""A whole SCRIPT message: envelope, header and body (NCPDP SCRIPT Standard 2017071).

``parse_message`` is the single entry point for inbound bytes. It checks, in this order:

1. well-formed, DOCTYPE-free XML (500);
2. the envelope: a ``Message`` root, ``TransactionDomain`` SCRIPT and ``TransactionVersion``
   2017071x (else 4040), the other four version attributes present and 2017071x (else 3000).
   2017071 uses no namespace, but a 2017071 message written in the SCRIPT namespace
   (``http://www.ncpdp.org/schema/SCRIPT``, with any prefix or as the default) is read as if it
   had none: a namespace is a serialization detail. SCRIPT 10.6 is 4040 as a
   :class:`~eprescribe.ncpdp.errors.Script106Error` (answered in 10.6), any other namespaced
   root 4040;
3. ``Header`` then ``Body`` (3000 for structure, lengths, datatypes and code lists);
4. exactly one transaction in ``Body``. NewRx, CancelRx, RxChangeResponse, RxRenewalResponse,
   Status, Error and Verify bodies are validated, and so are those the hub sends
   (RxChangeRequest, RxRenewalRequest, CancelRxResponse);
   any other transaction name is returned with ``body=None`` for the caller to accept or answer
   with 4040;
5. for a NewRx, a CancelRx or a prescriber's response, values that contradict each other or
   the header (2000).

Only :class:`~eprescribe.ncpdp.errors.ScriptRejection` subclasses ever escape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final, TypeAlias

from lxml import etree

from eprescribe.ncpdp.cancelrx import CancelRx, parse_cancelrx
from eprescribe.ncpdp.error import Error, parse_error
from eprescribe.ncpdp.errors import (
    Script106Error,
    StandardViolationError,
    UnsupportedTransactionError,
)
from eprescribe.ncpdp.header import Header, parse_header
from eprescribe.ncpdp.newrx import NewRx, check_context, parse_newrx
from eprescribe.ncpdp.outbound.cancelrxresponse import CancelRxResponse, parse_cancel_rx_response
from eprescribe.ncpdp.outbound.rxchangerequest import RxChangeRequest, parse_rx_change_request
from eprescribe.ncpdp.outbound.rxfill import RxFill, parse_rx_fill
from eprescribe.ncpdp.outbound.rxrenewalrequest import RxRenewalRequest, parse_rx_renewal_request
from eprescribe.ncpdp.prescriber_response import PrescriberResponse
from eprescribe.ncpdp.rxchangeresponse import parse_rx_change_response
from eprescribe.ncpdp.rxfillindicatorchange import (
    RxFillIndicatorChange,
    parse_rx_fill_indicator_change,
)
from eprescribe.ncpdp.rxrenewalresponse import parse_rx_renewal_response
from eprescribe.ncpdp.status import Status, parse_status
from eprescribe.ncpdp.structure import Spec, req, walk
from eprescribe.ncpdp.verify import Verify, parse_verify
from eprescribe.ncpdp.xml import parse_document

__all__ = ["VERSION_ATTRIBUTES", "Body", "Message", "parse_message"]

#: The six required attributes of ``Message``.
VERSION_ATTRIBUTES: Final = (
    "DatatypesVersion",
    "TransportVersion",
    "TransactionDomain",
    "TransactionVersion",
    "StructuresVersion",
    "ECLVersion",
)

Body: TypeAlias = (
    NewRx
    | CancelRx
    | PrescriberResponse
    | Status
    | Error
    | Verify
    | RxChangeRequest
    | RxRenewalRequest
    | CancelRxResponse
    | RxFill
    | RxFillIndicatorChange
    | None
)

# "2017071" and one ASCII digit: ten strings, so a set lookup instead of a regex.
_VERSIONS: Final = frozenset(f"2017071{digit}" for digit in range(10))
_OTHER_VERSIONS: Final = ("DatatypesVersion", "TransportVersion", "StructuresVersion", "ECLVersion")
_MESSAGE = Spec(req("Header"), req("Body"))
#: The SCRIPT namespace (SCRIPT 10.6 uses it; some 2017071 senders put their messages in it).
SCRIPT_NAMESPACE: Final = "http://www.ncpdp.org/schema/SCRIPT"
#: The namespaces of SCRIPT 10.6: NCPDP's and the Surescripts variant's.
SCRIPT_10_6_NAMESPACES: Final = frozenset(
    {SCRIPT_NAMESPACE, "http://www.surescripts.com/messaging"}
)
_SCRIPT_PREFIX: Final = f"{{{SCRIPT_NAMESPACE}}}"
_BODY_PATH: Final = "/Message/Body"
_BODY_PARSERS: Final[dict[str, Callable[[etree._Element, str], Body]]] = {
    "NewRx": parse_newrx,
    "CancelRx": parse_cancelrx,
    "RxChangeResponse": parse_rx_change_response,
    "RxRenewalResponse": parse_rx_renewal_response,
    "Status": parse_status,
    "Error": parse_error,
    "Verify": parse_verify,
    # the transactions the hub sends for a pharmacy (eprescribe.ncpdp.outbound)
    "RxChangeRequest": parse_rx_change_request,
    "RxRenewalRequest": parse_rx_renewal_request,
    "CancelRxResponse": parse_cancel_rx_response,
    "RxFill": parse_rx_fill,
    "RxFillIndicatorChange": parse_rx_fill_indicator_change,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A validated message. ``transaction`` is the name of the Body's child element."""

    version: str
    header: Header
    transaction: str
    body: Body


def parse_message(data: bytes) -> Message:
    """Parse and validate SCRIPT 2017071 bytes, or raise a ``ScriptRejection``."""
    root = parse_document(data)
    version = _check_envelope(root)
    children = walk(root, _MESSAGE, "/Message")
    header = parse_header(children["Header"][0])
    transaction, element = _transaction(children["Body"][0])
    parser = _BODY_PARSERS.get(transaction)
    body = None if parser is None else parser(element, f"{_BODY_PATH}/{transaction}")
    if isinstance(body, (NewRx, CancelRx, PrescriberResponse)):
        check_context(body, header, f"{_BODY_PATH}/{transaction}")
    return Message(version, header, transaction, body)


def _check_envelope(root: etree._Element) -> str:
    """Route on the root and its attributes; return the TransactionVersion."""
    if root.tag == f"{_SCRIPT_PREFIX}Message" and root.get("TransactionVersion") in _VERSIONS:
        _drop_script_namespace(root)
    if root.tag != "Message":
        name = etree.QName(root)
        if (
            name.localname == "Message"
            and name.namespace in SCRIPT_10_6_NAMESPACES
            and (root.get("version"), root.get("release")) == ("010", "006")
        ):
            raise Script106Error(
                "SCRIPT 10.6 is not supported, send SCRIPT 2017071", "/Message", name.namespace
            )
        if name.namespace is not None:
            raise UnsupportedTransactionError(
                "namespaced SCRIPT messages (e.g. 10.6) are not supported", f"/{name.localname}"
            )
        raise StandardViolationError("root element must be Message", f"/{name.localname}")
    if _attribute(root, "TransactionDomain") != "SCRIPT":
        raise UnsupportedTransactionError(
            "transaction domain not supported", "/Message/@TransactionDomain"
        )
    version = _attribute(root, "TransactionVersion")
    if version not in _VERSIONS:
        raise UnsupportedTransactionError(
            "only SCRIPT 2017071 is supported", "/Message/@TransactionVersion"
        )
    for attribute in _OTHER_VERSIONS:
        if _attribute(root, attribute) not in _VERSIONS:
            raise StandardViolationError("version must be 2017071x", f"/Message/@{attribute}")
    return version


def _drop_script_namespace(root: etree._Element) -> None:
    """Rename the elements (and attributes) in the SCRIPT namespace to their local names, so
    that the message is validated and its errors are located exactly as without a namespace.
    Elements of any other namespace keep it, and the structure check rejects them."""
    cut = len(_SCRIPT_PREFIX)
    for el in root.iter():
        tag = el.tag
        if isinstance(tag, str) and tag.startswith(_SCRIPT_PREFIX):
            el.tag = tag[cut:]
        for key in list(el.attrib):
            if isinstance(key, str) and key.startswith(_SCRIPT_PREFIX):
                el.attrib[key[cut:]] = el.attrib.pop(key)
    etree.cleanup_namespaces(root)


def _attribute(root: etree._Element, name: str) -> str:
    value = root.get(name)
    if value is None:
        raise StandardViolationError("required attribute missing", f"/Message/@{name}")
    return value.strip()


def _transaction(body: etree._Element) -> tuple[str, etree._Element]:
    """The Body's only child element and its name."""
    if body.text is not None and not body.text.isspace():
        raise StandardViolationError("unexpected text content", _BODY_PATH)
    elements = list(body)
    if not elements:
        raise StandardViolationError("Body contains no transaction", _BODY_PATH)
    for element in elements:
        if not isinstance(element.tag, str) or element.tag[0] == "{":
            raise StandardViolationError("unexpected element", _BODY_PATH)
        if element.tail is not None and not element.tail.isspace():
            raise StandardViolationError("unexpected text content", _BODY_PATH)
    if len(elements) > 1:
        second = elements[1]
        same = [item for item in elements if item.tag == second.tag]
        index = f"[{same.index(second) + 1}]" if len(same) > 1 else ""
        raise StandardViolationError(
            "Body must contain exactly one transaction", f"{_BODY_PATH}/{second.tag}{index}"
        )
    first = elements[0]
    return str(first.tag), first
