"""National Drug Code formats (prescription-checks.md §4).

An NDC is 10 digits in three segments, laid out 4-4-2, 5-3-2 or 5-4-1; HIPAA transactions use
the 11-digit 5-4-2 form, zero-padding the short segment. A hyphenated code says which segment is
short, so it normalises unambiguously. An unhyphenated 10-digit code does not: it has one
candidate per layout, and only a list of known codes (the FDA package file) can pick one.

Layouts are a table rather than hard-coded slicing because the FDA plans 6-digit labeler codes;
a new layout is one more row.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["ndc_candidates", "ndc_format_valid", "normalize_ndc"]

# Segment lengths of each hyphenated layout and the 11-digit padding of each segment.
_LAYOUTS: Final = {
    (4, 4, 2): (5, 4, 2),
    (5, 3, 2): (5, 4, 2),
    (5, 4, 1): (5, 4, 2),
    (5, 4, 2): (5, 4, 2),
}
_HYPHENATED = re.compile(r"(\d+)-(\d+)-(\d+)", re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)


def normalize_ndc(code: str) -> str | None:
    """The 11-digit form of a hyphenated 10- or 11-digit NDC, or of an 11-digit NDC.

    None for anything else, including an unhyphenated 10-digit NDC: that one is valid but
    ambiguous (see ``ndc_candidates``).
    """
    code = code.strip()
    if _DIGITS.fullmatch(code):
        return code if len(code) == 11 else None
    match = _HYPHENATED.fullmatch(code)
    if match is None:
        return None
    segments = match.groups()
    padding = _LAYOUTS.get((len(segments[0]), len(segments[1]), len(segments[2])))
    if padding is None:
        return None
    return "".join(part.zfill(width) for part, width in zip(segments, padding, strict=True))


def ndc_candidates(code: str) -> tuple[str, ...]:
    """Every 11-digit code a 10- or 11-digit NDC may stand for.

    One candidate for a hyphenated or 11-digit code; three for an unhyphenated 10-digit code
    (4-4-2, 5-3-2 and 5-4-1 read); none for an invalid code.
    """
    code = code.strip()
    normalized = normalize_ndc(code)
    if normalized is not None:
        return (normalized,)
    if not (_DIGITS.fullmatch(code) and len(code) == 10):
        return ()
    return ("0" + code, code[:5] + "0" + code[5:], code[:9] + "0" + code[9:])


def ndc_format_valid(code: str) -> bool:
    """True for a 10-digit NDC (hyphenated 4-4-2, 5-3-2, 5-4-1, or plain digits) or an 11-digit
    NDC (plain or hyphenated 5-4-2). Format only: it says nothing about the code being listed."""
    return bool(ndc_candidates(code))
