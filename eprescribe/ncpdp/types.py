"""Common datatypes of NCPDP SCRIPT Standard 2017071 as validated value objects.

Spec element names stay at the wire boundary (the parsers); these objects use snake_case.
Dates and times: a SCRIPT ``dateTime`` may omit its zone; such values are taken as UTC. Every
``datetime`` held here is timezone-aware and in UTC.

:func:`to_json` turns any value object of the package into plain JSON data for storage;
:func:`from_json` turns such data back into the value object.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import Final, TypeAlias, TypeVar

import msgspec

__all__ = [
    "COMMUNICATION_KINDS",
    "DRUG_DESCRIPTION_MAX",
    "IDENTIFIER_MAX",
    "PARTY_QUALIFIERS",
    "PARTY_TEXT_MAX",
    "PARTY_VALUE_MAX",
    "Address",
    "Coded",
    "CommunicationNumber",
    "DateValue",
    "JsonValue",
    "Name",
    "Party",
    "SenderSoftware",
    "from_json",
    "parse_boolean",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "to_json",
]

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
T = TypeVar("T")

#: an1..35: MessageID, RelatesToMessageID, PrescriberOrderNumber, RxReferenceNumber
IDENTIFIER_MAX: Final = 35
#: an1..105: MedicationPrescribed/DrugDescription
DRUG_DESCRIPTION_MAX: Final = 105
#: ``To``/``From`` ``@Qualifier`` values (pharmacy, clinic, mailbox, prescriber, ...).
PARTY_QUALIFIERS: Final = frozenset({"P", "C", "M", "D", "CF", "ZZZ", "PY", "DIRECT", "REMS"})
#: longest ``To``/``From`` identifier (a DIRECT address may be a long e-mail address)
PARTY_VALUE_MAX: Final = 256
#: longest party written as ``qualifier:value`` (:attr:`Party.text`), the form in which the hub
#: stores a sender
PARTY_TEXT_MAX: Final = max(map(len, PARTY_QUALIFIERS)) + 1 + PARTY_VALUE_MAX

#: Children of ``CommunicationNumbers``, in schema order.
COMMUNICATION_KINDS: Final = (
    "PrimaryTelephone",
    "Beeper",
    "ElectronicMail",
    "Fax",
    "HomeTelephone",
    "WorkTelephone",
    "OtherTelephone",
)

# re.ASCII: \d must not match other scripts' digits, which int() and Decimal() would accept.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?(Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}
_NO_OFFSET: Final = dt.timedelta(0)


def _require_text(value: str, what: str) -> None:
    if not value or not value.isprintable():
        raise ValueError(f"{what} must be non-empty printable text")


@dataclasses.dataclass(frozen=True, slots=True)
class Party:
    """``To`` or ``From``: an identifier and its ``@Qualifier``.

    The attribute is optional in the Standard, so ``qualifier`` is ``None`` when it was not sent
    (and a reply to such a party omits it too).
    """

    qualifier: str | None
    value: str

    def __post_init__(self) -> None:
        if self.qualifier is not None and self.qualifier not in PARTY_QUALIFIERS:
            raise ValueError("unknown party qualifier")
        _require_text(self.value, "party identifier")
        if len(self.value) > PARTY_VALUE_MAX:
            raise ValueError(f"party identifier longer than {PARTY_VALUE_MAX} characters")

    @property
    def text(self) -> str:
        """``qualifier:value`` (``:value`` without a qualifier), the form in which the hub
        stores a sender: the first colon always ends the qualifier, so no two parties share it."""
        return f"{self.qualifier or ''}:{self.value}"


@dataclasses.dataclass(frozen=True, slots=True)
class SenderSoftware:
    """``SenderSoftware``: developer, product and version of the sending system."""

    developer: str
    product: str
    version: str

    def __post_init__(self) -> None:
        for value in (self.developer, self.product, self.version):
            _require_text(value, "sender software field")
            if len(value) > 35:
                raise ValueError("sender software fields are an1..35")


@dataclasses.dataclass(frozen=True, slots=True)
class Name:
    """A person's name (``LastName``, ``FirstName``, ``MiddleName``, ``Suffix``, ``Prefix``)."""

    last: str
    first: str | None
    middle: str | None = None
    suffix: str | None = None
    prefix: str | None = None

    def __post_init__(self) -> None:
        if not self.last:
            raise ValueError("last name is required")


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    """A postal address (``AddressLine1`` .. ``CountryCode``).

    Which parts must be present depends on whose address it is (a HumanPatient's needs them
    all, a Pharmacy's none), so the parsers enforce that; a part that is present is never empty.
    """

    line1: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country_code: str | None
    line2: str | None = None

    def __post_init__(self) -> None:
        parts = (self.line1, self.city, self.state, self.postal_code, self.country_code)
        if "" in parts or self.line2 == "":
            raise ValueError("address parts are absent (None) or non-empty")


@dataclasses.dataclass(frozen=True, slots=True)
class CommunicationNumber:
    """One entry of ``CommunicationNumbers``; ``kind`` is the element name, e.g. ``Fax``.

    For ``ElectronicMail`` the ``number`` is the e-mail address.
    """

    kind: str
    number: str
    extension: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in COMMUNICATION_KINDS:
            raise ValueError("unknown communication number kind")
        if not self.number:
            raise ValueError("communication number is required")


@dataclasses.dataclass(frozen=True, slots=True)
class Coded:
    """A coded value as used by the structured Sig: ``Text``, ``Qualifier``, ``Code``."""

    text: str | None = None
    qualifier: str | None = None
    code: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DateValue:
    """The SCRIPT "Date or DateTime" choice (``DateOfBirth``, ``WrittenDate``, ...).

    ``date`` is always set: the calendar date as written (for a ``DateTime``, the date in the
    sender's own offset). ``datetime`` is set only for the ``DateTime`` form, aware and in UTC; a
    ``DateTime`` without a zone is taken as UTC.
    """

    date: dt.date
    datetime: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.datetime is not None and self.datetime.utcoffset() != _NO_OFFSET:
            raise ValueError("DateValue.datetime must be aware and in UTC")


def parse_date(text: str) -> dt.date:
    """Parse an ``xsd:date`` (a zone suffix is accepted and ignored); ``ValueError`` if invalid."""
    if _DATE.fullmatch(text) is None:
        raise ValueError("not an xsd:date")
    return dt.date.fromisoformat(text[:10])


def parse_datetime(text: str) -> tuple[dt.datetime, dt.date]:
    """Parse an ``xsd:dateTime`` into (aware UTC datetime, calendar date as written).

    A missing zone means UTC. Fractions beyond microseconds are truncated.
    """
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError("not an xsd:dateTime")
    fraction, zone = match.group(7), match.group(8)
    if fraction is None or len(fraction) <= 6:
        # The common case: the regex already pinned the format down to what fromisoformat reads.
        local = dt.datetime.fromisoformat(text)
        if zone is None:
            local = local.replace(tzinfo=dt.UTC)
        elif zone != "Z":
            _zone(zone)  # range check of the offset
    else:
        year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        micro = int(fraction[:6])
        local = dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=_zone(zone))
    return local.astimezone(dt.UTC), local.date()


def _zone(zone: str | None) -> dt.timezone:
    if zone is None or zone == "Z":
        return dt.UTC
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError("zone offset out of range")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_decimal(text: str) -> Decimal:
    """Parse a plain decimal number (no exponent, no thousands separators)."""
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError("not a decimal number")
    return Decimal(text)


def parse_boolean(text: str) -> bool:
    """Parse an ``xsd:boolean`` (``true``, ``false``, ``1``, ``0``)."""
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise ValueError("not an xsd:boolean") from None


def to_json(obj: object) -> dict[str, JsonValue]:
    """Turn a value object of this package into a JSON-safe dict.

    Field names stay snake_case; tuples become lists (a tuple of ``(name, value)`` pairs becomes
    a list of two-item lists); dates and datetimes become ISO 8601 strings; ``Decimal`` becomes
    its exact string.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("to_json expects a dataclass instance")
    return {field.name: _json_value(getattr(obj, field.name)) for field in dataclasses.fields(obj)}


def _json_value(value: object) -> JsonValue:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetime is a date subclass
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def from_json(cls: type[T], data: object) -> T:
    """The value object of type ``cls`` that :func:`to_json` (or any encoder following the same
    rules, like the hub's JSON columns) turned into ``data``: ``from_json(type(v), to_json(v))
    == v``. ``cls`` may also be a tuple type, e.g. ``tuple[Allergy, ...]``.

    Types are checked against the dataclasses' annotations and every ``__post_init__`` runs
    again, so stored data that no longer makes a valid value object raises ``ValueError`` (a
    ``msgspec.ValidationError`` naming the offending path) here rather than surfacing as a
    wrong value later. Keys a dataclass does not know are ignored and missing keys take the
    field's default, so data written before a field was added or removed still reads.
    """
    # msgspec builds the dataclasses in C from their type hints (cached per class): about five
    # times faster than a generic reader written in Python, and it checks types as it goes
    return msgspec.convert(data, cls)
