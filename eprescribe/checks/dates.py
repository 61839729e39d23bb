"""Written date against the receipt: expiry by schedule and state, and post-dating."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from .base import SCHEDULE_II, SCHEDULE_NAMES, Check, CheckContext, Finding, Severity

#: SCRIPT dates carry no zone; US prescribers are up to 10 hours behind UTC (Hawaii), plus
#: a margin for clocks, so a date is "in the future" only past this slack.
FUTURE_SLACK = dt.timedelta(hours=14)


def expired(context: CheckContext) -> Iterator[Finding]:
    written = context.newrx.medication.written_date.date
    days = context.expiry.days(context.schedule, context.state)
    last_day = written + dt.timedelta(days=days)
    received = context.received_at.date()
    if received > last_day:
        kind = SCHEDULE_NAMES.get(context.schedule or "", "non-controlled")
        yield Finding(
            "RX_EXPIRED",
            Severity.HARD_STOP,
            f"Written {written.isoformat()}: a {kind} prescription may be filled for "
            f"{days} days, until {last_day.isoformat()}.",
            {
                "written_date": written.isoformat(),
                "received": received.isoformat(),
                "valid_days": days,
                "state": context.state,
                "schedule": kind,
            },
        )


def future(context: CheckContext) -> Iterator[Finding]:
    written = context.newrx.medication.written_date.date
    latest = (context.received_at + FUTURE_SLACK).date()
    if written > latest:
        # post-dating a C-II prescription is unlawful (21 CFR 1306.05); elsewhere it is odd
        severity = Severity.HARD_STOP if context.schedule == SCHEDULE_II else Severity.WARNING
        yield Finding(
            "WRITTEN_DATE_IN_FUTURE",
            severity,
            f"The written date {written.isoformat()} is after the day the hub received it.",
            {
                "written_date": written.isoformat(),
                "received": context.received_at.date().isoformat(),
            },
        )


#: this family's checks, in report order
CHECKS: tuple[Check, ...] = (expired, future)
