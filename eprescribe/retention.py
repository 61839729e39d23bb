"""How long the hub keeps each kind of record, and which are old enough to remove.

The legal minimums (docs/backups.md "Retention"): a controlled-substance prescription's
records, as received and signed, and the audit trail: 2 years (21 CFR 1304.04(a),
1304.06(c), 1311.305). Other prescriptions: states set their own periods, which the hub's
reference does not list; the hub keeps them at least as long as controlled ones and, by
default, 6 years. The audit trail is kept 6 years by default (45 CFR 164.316(b)(2)'s
documentation period, as it is often applied to audit logs). An operator may lengthen any of
them, never shorten one below its minimum.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

#: two years, whatever the leap days in them
TWO_YEARS = 731
SIX_YEARS = 6 * 365 + 2


class Kind(StrEnum):
    #: a prescription with a DEA schedule (C-II to C-V), with everything recorded about it
    CONTROLLED = "controlled"
    #: any other prescription, with everything recorded about it
    PRESCRIPTIONS = "prescriptions"
    #: entries of the audit trail
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class Period:
    minimum: int  # days, the law's
    default: int  # days, the hub's
    basis: str


PERIODS: Mapping[Kind, Period] = {
    Kind.CONTROLLED: Period(TWO_YEARS, TWO_YEARS, "21 CFR 1304.04(a), 1304.06(c), 1311.305"),
    Kind.PRESCRIPTIONS: Period(TWO_YEARS, SIX_YEARS, "state pharmacy record laws (check yours)"),
    Kind.AUDIT: Period(TWO_YEARS, SIX_YEARS, "21 CFR 1311.305; 45 CFR 164.316(b)(2)"),
}


class RetentionError(ValueError):
    """A retention period or date the hub refuses."""


def check_days(kind: Kind, days: int) -> int:
    """``days`` as the retention of ``kind``, refused below its legal minimum."""
    minimum = PERIODS[kind].minimum
    if days < minimum:
        raise RetentionError(
            f"the retention of {kind} records must be at least {minimum} days "
            f"({PERIODS[kind].basis}), got {days}"
        )
    return days


def cutoff(now: dt.datetime, days: int, before: dt.datetime | None = None) -> dt.datetime:
    """Records last changed before this moment may go: ``days`` before ``now``, or
    ``before`` if it is earlier (a later one never shortens the retention)."""
    limit = now - dt.timedelta(days=days)
    return limit if before is None or before > limit else before
