"""Reads the daily quantity out of common free-text directions ("Take 1 tablet by mouth twice
daily"). Deliberately narrow: anything it does not recognise gives None, so the days-supply
check stays silent rather than guessing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "half": "0.5", "a": "1", "an": "1"}
#: NCI codes of the units free text names
UNITS = {"tablet": "C48542", "tab": "C48542", "capsule": "C48480", "cap": "C48480"}
#: most specific first: "twice daily" also contains "daily"
_PER_DAY = tuple(
    (re.compile(pattern), Decimal(count))
    for pattern, count in (
        (r"\bfour times\s+(?:a\s+|per\s+)?(?:daily|day)\b|\bq\.?i\.?d\b", 4),
        (r"\bthree times\s+(?:a\s+|per\s+)?(?:daily|day)\b|\bt\.?i\.?d\b", 3),
        (
            r"\btwice\s+(?:a\s+)?(?:daily|day)\b|\btwo times\s+(?:a|per|each)\s+day\b"
            r"|\bb\.?i\.?d\b",
            2,
        ),
        (
            r"\b(?:once|one time)\s+(?:a|per|each|every)?\s*day\b|\bdaily\b|\bq\.?d\b|\bqhs\b"
            r"|\bevery (?:day|morning|evening|night)\b|\bat bedtime\b|\bnightly\b",
            1,
        ),
    )
)
_EVERY_HOURS = re.compile(r"\bevery\s+(\d{1,2})\s+hours?\b|\bq(\d{1,2})h\b")
_DOSE = re.compile(
    r"\b(?:take|give|chew|swallow)\s+(\d+(?:\.\d+)?|one|two|three|four|half|an?)\s+"
    r"(tablet|tab|capsule|cap)s?\b"
)
_AS_NEEDED = re.compile(r"\bas needed\b|\bprn\b|\bif needed\b")


@dataclass(frozen=True, slots=True)
class DailyUse:
    quantity: Decimal  # units per day
    unit_code: str


def as_needed(text: str) -> bool:
    """Whether free-text directions say "as needed" ("PRN", "if needed")."""
    return _AS_NEEDED.search(" ".join(text.lower().split())) is not None


def daily_use(text: str) -> DailyUse | None:
    """Units per day for a fixed schedule of tablets or capsules, else None."""
    sig = " ".join(text.lower().split())
    if as_needed(sig) or " then " in sig or " and " in sig:
        return None  # variable or tapering directions: no single daily amount
    dose = _DOSE.search(sig)
    per_day = _times_per_day(sig)
    if dose is None or per_day is None:
        return None
    amount = Decimal(NUMBERS.get(dose.group(1), dose.group(1)))
    return DailyUse(amount * per_day, UNITS[dose.group(2)])


def _times_per_day(sig: str) -> Decimal | None:
    hours = _EVERY_HOURS.search(sig)
    if hours:
        every = int(hours.group(1) or hours.group(2))
        return Decimal(24) / every if 0 < every <= 24 and 24 % every == 0 else None
    return next((count for pattern, count in _PER_DAY if pattern.search(sig)), None)
