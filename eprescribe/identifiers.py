"""Check-digit rules for US healthcare identifiers (see prescription-checks.md §2)."""

from __future__ import annotations

import re

_NPI = re.compile(r"[12]\d{9}")
_NCPDPID = re.compile(r"\d{7}")


def luhn_valid(digits: str) -> bool:
    """The Luhn mod-10 check over a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def npi_valid(npi: str) -> bool:
    """10 digits starting with 1 or 2, Luhn-valid with the 80840 health-industry prefix."""
    return bool(_NPI.fullmatch(npi)) and luhn_valid("80840" + npi)


def ncpdpid_valid(ncpdpid: str) -> bool:
    """An NCPDP provider ID is 7 digits."""
    return bool(_NCPDPID.fullmatch(ncpdpid))
