"""How many SMS segments a text costs (3GPP TS 23.038 and 23.040).

A text written only in the GSM 03.38 default alphabet is sent in GSM-7: 160 characters in one
segment, 153 in each part of a longer (concatenated) message, the extension table's characters
(``€ [ ] { } ^ ~ | \\`` and form feed) counting two each, never split between parts. Any other
character (á, í, ó, ú, emoji…) sends the whole text in UCS-2: 70 UTF-16 code units in one
segment, 67 in each part, a surrogate pair never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
#: units in a single segment and in each part of a concatenated message, by encoding
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SmsLength:
    """A text's encoding, its length in that encoding's units (septets or UTF-16 code
    units), and the segments it is sent in."""

    encoding: Encoding
    units: int
    segments: int


def sms_length(text: str) -> SmsLength:
    """The encoding, units and segments of ``text`` sent as one SMS."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        widths = [2 if c in GSM7_EXTENSION else 1 for c in text]
        encoding: Encoding = "GSM-7"
    else:
        widths = [len(c.encode("utf-16-le")) // 2 for c in text]
        encoding = "UCS-2"
    single, part = LIMITS[encoding]
    units = sum(widths)
    if units <= single:
        return SmsLength(encoding, units, 1 if units else 0)
    return SmsLength(encoding, units, _parts(widths, part))


def _parts(widths: list[int], room: int) -> int:
    """Parts of a concatenated message: each character whole in one part."""
    parts, used = 1, 0
    for width in widths:
        if used + width > room:
            parts, used = parts + 1, 0
        used += width
    return parts
