"""Quiet hours in the patient's own time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from eprescribe.notifications import DEFAULT_QUIET_HOURS, QuietHours, send_at

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_the_default_window_is_9_pm_to_8_am() -> None:
    assert (DEFAULT_QUIET_HOURS.start, DEFAULT_QUIET_HOURS.end) == (time(21), time(8))


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        # 10:00 EST: outside, unchanged
        (utc(2026, 1, 15, 15, 0), utc(2026, 1, 15, 15, 0)),
        # 20:59 EST: still allowed
        (utc(2026, 1, 16, 1, 59), utc(2026, 1, 16, 1, 59)),
        # 21:00 EST, the window's first minute: 08:00 EST the next morning
        (utc(2026, 1, 16, 2, 0), utc(2026, 1, 16, 13, 0)),
        # 23:30 EST: next morning
        (utc(2026, 1, 16, 4, 30), utc(2026, 1, 16, 13, 0)),
        # 03:00 EST, after midnight: the same morning
        (utc(2026, 1, 16, 8, 0), utc(2026, 1, 16, 13, 0)),
        # 08:00 EST exactly: the window is over
        (utc(2026, 1, 16, 13, 0), utc(2026, 1, 16, 13, 0)),
    ],
)
def test_a_window_across_midnight(due: datetime, expected: datetime) -> None:
    assert send_at(due, NY) == expected


def test_spring_forward_ends_the_window_at_8_local_on_daylight_time() -> None:
    # Sunday 8 March 2026, New York: 02:00 EST becomes 03:00 EDT. Due at 23:00 EST on the 7th
    # and at 01:30 EST on the 8th: both wait for 08:00 EDT, 12:00 UTC (not 13:00)
    assert send_at(utc(2026, 3, 8, 4, 0), NY) == utc(2026, 3, 8, 12, 0)
    assert send_at(utc(2026, 3, 8, 6, 30), NY) == utc(2026, 3, 8, 12, 0)
    # 03:30 EDT, after the change: the same
    assert send_at(utc(2026, 3, 8, 7, 30), NY) == utc(2026, 3, 8, 12, 0)


def test_fall_back_ends_the_window_at_8_local_on_standard_time() -> None:
    # Sunday 1 November 2026, New York: 02:00 EDT becomes 01:00 EST. Due at 22:00 EDT on
    # 31 October, and at 01:30 in either hour of the repeated one: 08:00 EST, 13:00 UTC
    assert send_at(utc(2026, 11, 1, 2, 0), NY) == utc(2026, 11, 1, 13, 0)
    assert send_at(utc(2026, 11, 1, 5, 30), NY) == utc(2026, 11, 1, 13, 0)  # 01:30 EDT
    assert send_at(utc(2026, 11, 1, 6, 30), NY) == utc(2026, 11, 1, 13, 0)  # 01:30 EST
    # the evening of that 25-hour day: 21:00 EST is 02:00 UTC; 08:00 EST the next morning
    assert send_at(utc(2026, 11, 2, 2, 0), NY) == utc(2026, 11, 2, 13, 0)
    assert send_at(utc(2026, 11, 2, 1, 59), NY) == utc(2026, 11, 2, 1, 59)


def test_a_window_ending_in_the_skipped_hour_ends_when_the_clocks_jump() -> None:
    # quiet until 02:30, which 8 March 2026 never shows in New York: 03:00 EDT, 07:00 UTC
    until_half_two = QuietHours(time(0, 0), time(2, 30))
    assert send_at(utc(2026, 3, 8, 5, 30), NY, until_half_two) == utc(2026, 3, 8, 7, 0)


def test_a_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence() -> None:
    until_half_one = QuietHours(time(0, 0), time(1, 30))
    assert send_at(utc(2026, 11, 1, 4, 30), NY, until_half_one) == utc(2026, 11, 1, 5, 30)


def test_a_window_within_one_day() -> None:
    lunch = QuietHours(time(12), time(13, 30))
    assert send_at(utc(2026, 6, 1, 19, 15), LA, lunch) == utc(2026, 6, 1, 20, 30)  # 12:15 PDT
    assert send_at(utc(2026, 6, 1, 18, 59), LA, lunch) == utc(2026, 6, 1, 18, 59)


def test_the_result_is_utc_and_never_earlier_than_due() -> None:
    start = utc(2026, 3, 6, 0, 0)
    for minutes in range(0, 5 * 24 * 60, 17):
        due = start + timedelta(minutes=minutes)
        at = send_at(due, NY)
        assert at.tzinfo is UTC
        assert at >= due
        assert not DEFAULT_QUIET_HOURS.contains(at.astimezone(NY).time())


def test_naive_times_and_empty_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        send_at(datetime(2026, 1, 1, 12), NY)  # noqa: DTZ001
    with pytest.raises(ValueError, match="different"):
        QuietHours(time(8), time(8))
