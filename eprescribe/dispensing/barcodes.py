"""What a barcode scanner types at the fill and at stock receipt, read into a :class:`Scan`
(dispensing-patients-payments.md, "Product identification at the fill").

Keyboard-wedge scanners type the code and then Enter. Between the variable-length fields of a
GS1 code they send ASCII 29 (GS), which a browser's text field drops, so scanners are set to type
a printable stand-in instead: the common ones (``<GS>``, ``{GS}``, ``^]``, ``\\x1d``) are accepted,
and so is the parenthesised form printed under the code. A scanner that sends no separator at all
cannot be read reliably (the lot would run into the serial), which is why field lengths and
characters are checked and a code that breaks them is refused rather than guessed at.

Every check digit is verified: a misread that slips past the scanner would otherwise pick the
wrong product. Refusals carry a ``reason`` a technician can act on.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal

from eprescribe.drugs.ndc import ndc_candidates, normalize_ndc

__all__ = [
    "BarcodeError",
    "Scan",
    "ScanKind",
    "gs1_check_digit",
    "parse_scan",
    "rx_barcode_text",
]

ScanKind = Literal["gs1", "upc", "ndc", "rx"]

GS: Final = "\x1d"
#: printable stand-ins for GS that scanners are commonly set to type
_STAND_INS: Final = re.compile(r"<GS>|\{GS\}|\^\]|\\x1d", re.IGNORECASE)
#: AIM symbology identifier a scanner may prefix (``]d2`` GS1 DataMatrix, ``]E0`` EAN/UPC, ...)
_SYMBOLOGY: Final = re.compile(r"\][A-Za-z][0-9]")
#: the identifiers that announce GS1 element strings
_GS1_SYMBOLOGIES: Final = frozenset({"]d2", "]C1", "]Q3", "]e0", "]J1"})
_RX: Final = re.compile(r"RX(\d{6,10})", re.IGNORECASE | re.ASCII)
_RX_NUMBER: Final = re.compile(r"\d{6,10}", re.ASCII)
_HRI_AI: Final = re.compile(r"\((\d{2,4})\)", re.ASCII)
#: GS1 "character set 82", what a lot or serial may contain
_CSET82: Final = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+", re.ASCII)

#: AIs the GS1 General Specifications give a predefined length (no separator follows them),
#: by their first two digits: (AI length, value length)
_PREDEFINED: Final[dict[str, tuple[int, int]]] = {
    "00": (2, 18),
    "01": (2, 14),
    "02": (2, 14),
    "03": (2, 14),
    "04": (2, 16),
    **{f"1{d}": (2, 6) for d in "123456789"},
    "20": (2, 2),
    **{f"3{d}": (4, 6) for d in "123456"},
    "41": (3, 13),
}
#: variable-length AIs that may appear on drug packages, with their longest value; they end at
#: a separator or at the end of the code
_VARIABLE: Final[dict[str, int]] = {
    "10": 20,
    "21": 20,
    "22": 20,
    "30": 8,
    "37": 8,
    "235": 28,
    "240": 30,
    "241": 30,
    "250": 30,
    "251": 30,
    "400": 30,
    "401": 30,
    "403": 30,
    "7003": 10,
    **{f"71{d}": 20 for d in "012345"},
    "90": 30,
    **{f"9{d}": 90 for d in "123456789"},
}
_FIELD_NAMES: Final = {
    "01": "product number (GTIN)",
    "17": "expiry date",
    "10": "lot number",
    "21": "serial number",
}
_GTIN: Final = "01"
_EXPIRY: Final = "17"
_LOT: Final = "10"
_SERIAL: Final = "21"
#: the shortest GS1 element string worth reading: AI 01 and its GTIN
_MIN_ELEMENT_STRING: Final = 16


class BarcodeError(ValueError):
    """A scan that cannot be read; ``reason`` is shown to the technician as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Scan:
    """What one scan identified.

    ``ndc10`` is the 10 digits a barcode carries, without hyphens: their layout (4-4-2, 5-3-2 or
    5-4-1) is not in the code, so :meth:`ndc11_candidates` gives every 11-digit form for a lookup
    in the NDC Directory. ``ndc11`` is set instead when a typed NDC said its layout (hyphens, or
    11 digits).
    """

    kind: ScanKind
    ndc10: str | None = None
    gtin: str | None = None
    lot: str | None = None
    expiry: dt.date | None = None
    serial: str | None = None
    rx_number: str | None = None
    ndc11: str | None = None

    def ndc11_candidates(self) -> tuple[str, ...]:
        """The 11-digit (5-4-2) NDCs the scanned product may be; empty for an Rx label."""
        if self.ndc11 is not None:
            return (self.ndc11,)
        if self.ndc10 is None:
            return ()
        return ndc_candidates(self.ndc10)


def rx_barcode_text(rx_number: str) -> str:
    """The text of the Code 128 barcode on the hub's prescription labels, which
    :func:`parse_scan` reads back as kind ``"rx"``."""
    if not _RX_NUMBER.fullmatch(rx_number):
        raise BarcodeError("An Rx number on a label is 6 to 10 digits.")
    return f"RX{rx_number}"


def gs1_check_digit(body: str) -> int:
    """The GS1 check digit of ``body`` (the code without its check digit): weights 3, 1, 3, ...
    from the right."""
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def parse_scan(text: str) -> Scan:
    """Read what a scanner typed (or a person typed, or :mod:`server.dispensing.decode` found in
    a photo). Raises :class:`BarcodeError` with the reason for anything else."""
    code = _STAND_INS.sub(GS, text.strip())
    symbology = ""
    if _SYMBOLOGY.match(code):
        symbology, code = code[:3], code[3:]
    # a leading GS is the FNC1 that marks a GS1 code; a trailing one ends nothing
    code = code.strip(GS + " \t\r\n")
    if not code:
        raise BarcodeError("Nothing was scanned.")
    if code.startswith("("):
        return _gs1(_hri_fields(code))
    if symbology in _GS1_SYMBOLOGIES or GS in code:
        return _gs1(_element_fields(code))
    if match := _RX.fullmatch(code):
        return Scan(kind="rx", rx_number=match[1])
    if code.isascii() and code.isdigit() and len(code) < _MIN_ELEMENT_STRING:
        return _digits(code)
    if (ndc11 := normalize_ndc(code)) is not None:
        digits = code.replace("-", "")
        return Scan(kind="ndc", ndc10=digits if len(digits) == 10 else None, ndc11=ndc11)
    if len(code) >= _MIN_ELEMENT_STRING and code[:2].isascii() and code[:2].isdigit():
        return _gs1(_element_fields(code))
    raise BarcodeError("This is not a product barcode, an NDC or an Rx label of this pharmacy.")


def _digits(code: str) -> Scan:
    """A code of digits only, read by its length."""
    match len(code):
        case 10:
            return Scan(kind="ndc", ndc10=code)
        case 11:
            return Scan(kind="ndc", ndc11=code)
        case 12:
            return _upc(code)
        case 13 if code.startswith("0"):
            return _upc(code[1:])
        case 13:
            raise BarcodeError("This EAN-13 code is not a US product code.")
        case 14:
            return Scan(kind="gs1", ndc10=_drug_gtin(code), gtin=code)
        case 8:
            raise BarcodeError("Short UPC-E codes are not read: scan the 2D code or type the NDC.")
    raise BarcodeError("This number is not an NDC or a product barcode.")


def _upc(code: str) -> Scan:
    """A UPC-A: number system 3 (drugs), the 10-digit NDC and a check digit."""
    if gs1_check_digit(code[:-1]) != int(code[-1]):
        raise BarcodeError("The barcode's check digit is wrong: scan it again.")
    if not code.startswith("3"):
        raise BarcodeError("This UPC is not a drug code: drug UPCs start with 3.")
    return Scan(kind="upc", ndc10=code[1:11])


def _drug_gtin(gtin: str) -> str:
    """The NDC in a US drug GTIN-14: indicator digit, ``03``, the 10-digit NDC, check digit."""
    if gs1_check_digit(gtin[:-1]) != int(gtin[-1]):
        raise BarcodeError("The product number's check digit is wrong: scan it again.")
    if gtin[1:3] != "03":
        raise BarcodeError("This product number (GTIN) is not a US drug code: it has no NDC.")
    return gtin[3:13]


def _gs1(fields: list[tuple[str, str]]) -> Scan:
    values: dict[str, str] = {}
    for ai, value in fields:
        if ai in values:
            raise BarcodeError(f"The code carries its {_name(ai)} twice.")
        values[ai] = value
    gtin = values.get(_GTIN)
    if gtin is None:
        raise BarcodeError("The code has no product number (GTIN): scan the other code.")
    expiry = values.get(_EXPIRY)
    return Scan(
        kind="gs1",
        ndc10=_drug_gtin(gtin),
        gtin=gtin,
        lot=values.get(_LOT),
        expiry=None if expiry is None else _expiry(expiry),
        serial=values.get(_SERIAL),
    )


def _expiry(yymmdd: str) -> dt.date:
    """AI 17: YYMMDD, day 00 meaning the month's last day. The century is taken as 20YY:
    dated products of the 1900s are long gone, and this keeps the parser independent of today."""
    year, month, day = 2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    try:
        if day == 0:
            day = calendar.monthrange(year, month)[1]
        return dt.date(year, month, day)
    except ValueError:  # month 00 or 13 and up, or a day the month has not
        raise BarcodeError("The expiry date in the code is not a real date.") from None


def _element_fields(code: str) -> list[tuple[str, str]]:
    """The (AI, value) pairs of a GS1 element string whose variable fields end at GS."""
    fields: list[tuple[str, str]] = []
    pos = 0
    while pos < len(code):
        if code[pos] == GS:
            pos += 1
            continue
        ai, fixed, limit = _lookup(code, pos)
        start = pos + len(ai)
        if fixed:
            end = start + fixed
        else:
            end = code.find(GS, start)
            end = len(code) if end < 0 else end
        fields.append((ai, _checked(ai, code[start:end], fixed, limit)))
        pos = end
    return fields


def _hri_fields(code: str) -> list[tuple[str, str]]:
    """The (AI, value) pairs of the parenthesised form, ``(01)...(17)...(10)...``."""
    marks = list(_HRI_AI.finditer(code))
    if not marks or marks[0].start() != 0:
        raise BarcodeError("This is not a product barcode, an NDC or an Rx label of this pharmacy.")
    fields: list[tuple[str, str]] = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        ai = mark[1]
        found, fixed, limit = _lookup(ai, 0)
        if found != ai:
            raise BarcodeError(f"The code has a field the hub cannot read ({ai}).")
        end = len(code) if following is None else following.start()
        value = code[mark.end() : end].strip(GS + " ")
        fields.append((ai, _checked(ai, value, fixed, limit)))
    return fields


def _lookup(code: str, pos: int) -> tuple[str, int, int]:
    """The AI at ``pos`` with its fixed value length (0 when variable) and longest value."""
    predefined = _PREDEFINED.get(code[pos : pos + 2])
    if predefined is not None:
        ai_length, value_length = predefined
        ai = code[pos : pos + ai_length]
        if ai.isascii() and ai.isdigit() and len(ai) == ai_length:
            return ai, value_length, value_length
    for length in (2, 3, 4):
        ai = code[pos : pos + length]
        if ai in _VARIABLE:
            return ai, 0, _VARIABLE[ai]
    raise BarcodeError(f"The code has a field the hub cannot read ({code[pos : pos + 4]}...).")


def _checked(ai: str, value: str, fixed: int, limit: int) -> str:
    name = _name(ai)
    if fixed:
        if not (len(value) == fixed and value.isascii() and value.isdigit()):
            raise BarcodeError(f"The {name} in the code should be {fixed} digits.")
        return value
    if not value:
        raise BarcodeError(f"The {name} in the code is empty.")
    if len(value) > limit:
        raise BarcodeError(
            f"The {name} is longer than {limit} characters: the separator after it may be "
            "missing. Set the scanner to send <GS> between fields."
        )
    if not _CSET82.fullmatch(value):
        raise BarcodeError(
            f"The {name} has a character a product code cannot carry: the scanner may send a "
            "separator the hub does not know. Set it to send <GS> between fields."
        )
    return value


def _name(ai: str) -> str:
    return _FIELD_NAMES.get(ai, f"field ({ai})")
