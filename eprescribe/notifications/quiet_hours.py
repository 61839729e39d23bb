"""When a notification may go: never inside the patient's quiet hours, in their own time zone.

US SMS rules keep messages within 8 am to 9 pm in the recipient's time zone (TCPA), so the
default quiet window is 21:00 to 08:00 local time. A window may cross midnight. A message due
inside it waits for the window's end, read as a wall-clock time in the patient's zone on the
right day, so a day with a daylight-saving change ends the window at 08:00 local time all the
same (12:00 or 13:00 UTC in New York).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window, in local wall-clock time, when nothing is sent: ``start`` inclusive,
    ``end`` exclusive; ``start`` after ``end`` crosses midnight."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall-clock times, without a time zone")
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")

    def contains(self, moment: time) -> bool:
        """Whether the wall-clock time ``moment`` is inside the window."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


#: 8 am to 9 pm is when US SMS may reach a recipient (TCPA)
DEFAULT_QUIET_HOURS = QuietHours()


def send_at(due: datetime, zone: ZoneInfo, quiet: QuietHours = DEFAULT_QUIET_HOURS) -> datetime:
    """The moment (UTC) a notification due at ``due`` (aware) may go to a patient living in
    ``zone``: ``due`` itself outside the quiet window, else the window's end."""
    if due.tzinfo is None or due.utcoffset() is None:
        raise ValueError("the due time must be timezone-aware")
    local = due.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not quiet.contains(wall):
        return due.astimezone(UTC)
    day = local.date()
    if quiet.start > quiet.end and wall >= quiet.start:
        day += timedelta(days=1)  # the evening part of a window that ends tomorrow morning
    return _wall_clock(day, quiet.end, zone)


def _wall_clock(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) ``zone``'s clocks show ``moment`` on ``day``; a time the clocks
    skip (spring forward) gives the instant they jump, the first one past it."""
    first = datetime.combine(day, moment, zone)  # fold=0: an ambiguous time, the earlier one
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == first.replace(tzinfo=None):
        return utc
    # inside a gap: fold=1 reads it with the offset after the change (an instant before the
    # jump), fold=0 with the one before (after it); the jump, on a whole second, lies between
    before = int(first.replace(fold=1).timestamp())
    after = int(utc.timestamp())
    offset = _offset(before, zone)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset(middle, zone) == offset:
            before = middle
        else:
            after = middle
    return datetime.fromtimestamp(after, UTC)


def _offset(timestamp: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, zone).utcoffset()
