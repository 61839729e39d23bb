"""The triggers' dates and times as the patient reads them, in their zone and language."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from server.notifications.triggers import _date, _moment

NEW_YORK = ZoneInfo("America/New_York")
#: 03:30 UTC on 1 December: still 30 November, 22:30, in New York
LATE = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)


def test_a_date_is_the_patients_own_day_in_their_language() -> None:
    assert _date(LATE, NEW_YORK, "en") == "November 30"
    assert _date(LATE, NEW_YORK, "es") == "30 de noviembre"
    assert _date(LATE, ZoneInfo("UTC"), "fr") == "December 1"  # unknown language: English


def test_a_moment_reads_on_a_twelve_hour_clock_in_english_and_24_in_spanish() -> None:
    assert _moment(LATE, NEW_YORK, "en") == "November 30, 10:30 PM"
    assert _moment(LATE, NEW_YORK, "es") == "30 de noviembre, 22:30"
    noon = dt.datetime(2026, 7, 4, 16, 5, tzinfo=dt.UTC)
    assert _moment(noon, NEW_YORK, "en") == "July 4, 12:05 PM"
    midnight = dt.datetime(2026, 7, 4, 4, 0, tzinfo=dt.UTC)
    assert _moment(midnight, NEW_YORK, "en") == "July 4, 12:00 AM"
