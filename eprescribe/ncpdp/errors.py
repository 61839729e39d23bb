"""Rejections of inbound SCRIPT messages (NCPDP SCRIPT Standard 2017071).

Each exception maps one-to-one onto the ``Error`` reply the hub sends back: ``Code`` is always
900 ("transaction rejected"), ``DescriptionCode`` comes from the class, and ``Description`` is
``detail`` followed by the XPath of the first offending element or attribute, as the Standard
asks for description codes 500, 1000, 2000 and 3000.

Details never quote element values: they go back to the sender and may end up in logs, and values
can be patient data.
"""

from __future__ import annotations

from typing import ClassVar


class ScriptRejection(Exception):
    """A message the hub will not accept; raise a subclass, not this class itself.

    ``xpath`` is absolute from ``/Message`` (e.g. ``/Message/Body/NewRx/Patient`` or
    ``/Message/@TransactionVersion``), with a 1-based ``[n]`` only where the element repeats
    among its siblings.
    """

    code: ClassVar[str] = "900"
    description_code: ClassVar[str] = "3000"

    def __init__(self, detail: str, xpath: str | None = None) -> None:
        super().__init__(detail, xpath)
        self.detail = detail
        self.xpath = xpath

    @property
    def description(self) -> str:
        """The text for the reply's ``Description`` element."""
        return f"{self.detail}: {self.xpath}" if self.xpath else self.detail

    def __str__(self) -> str:
        return self.description


class XmlSyntaxError(ScriptRejection):
    """Not well-formed XML, a DOCTYPE, an undecodable encoding or an empty body (500)."""

    description_code = "500"


class UnidentifiedError(ScriptRejection):
    """The receiver cannot identify a party, e.g. an unknown receiving pharmacy (1000)."""

    description_code = "1000"


class ContentInvalidError(ScriptRejection):
    """Well-formed values that contradict each other or the context (2000)."""

    description_code = "2000"


class StandardViolationError(ScriptRejection):
    """Structure, cardinality, length, datatype or code-list violation (3000)."""

    description_code = "3000"


class UnsupportedTransactionError(ScriptRejection):
    """A SCRIPT version, namespace, domain or transaction the receiver does not support (4040)."""

    description_code = "4040"


class Script106Error(UnsupportedTransactionError):
    """A SCRIPT 10.6 message (4040). Its sender reads 10.6 only, so the Error that answers it is
    written as 10.6, in the sender's own ``namespace`` (the NCPDP or the Surescripts one)."""

    def __init__(self, detail: str, xpath: str | None, namespace: str) -> None:
        super().__init__(detail, xpath)
        self.namespace = namespace


class DuplicateMessageError(ScriptRejection):
    """The same sender already sent this ``MessageID`` (220)."""

    description_code = "220"
