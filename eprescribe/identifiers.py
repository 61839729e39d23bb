"""Check-digit rules for US healthcare identifiers (see prescription-checks.md §2)."""

from __future__ import annotations

import re

_NPI = re.compile(r"[12]\d{9}")
_NCPDPID = re.compile(r"\d{7}")


def luhn_valid(digits: str) -> bool:
    """The Luhn mod-10 check over a string of digits."""
    if not (digits.isascii() and digits.isdigit()):
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


_DEA = re.compile(r"([A-Z])([A-Z9])(\d{7})(?:-[A-Z0-9]{1,10})?")
#: first letters of DEA registrations that belong to an individual practitioner (the second
#: letter is then the registrant's last-name initial); M is a mid-level practitioner
INDIVIDUAL_REGISTRANTS = frozenset("ABFGM")


def dea_valid(dea: str) -> bool:
    """Two letters and seven digits (a supervisee suffix like ``-001AB`` allowed) whose last
    digit is the last digit of (d1 + d3 + d5) + 2 * (d2 + d4 + d6)."""
    match = _DEA.fullmatch(dea.strip().upper())
    if match is None:
        return False
    d = [int(c) for c in match.group(3)]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


def dea_name_mismatch(dea: str, last_name: str) -> bool:
    """True when an individual's DEA number does not carry their last-name initial."""
    match = _DEA.fullmatch(dea.strip().upper())
    if match is None or match.group(1) not in INDIVIDUAL_REGISTRANTS or match.group(2) == "9":
        return False
    initial = next((c for c in last_name.upper() if c.isalpha()), "")
    return bool(initial) and match.group(2) != initial
