"""Refusals anyone can cause, counted rather than audited one by one: the webhook's refused
posts (no signature, a bad or a stale one) and the waiting room's fee asked with a session
that is not one. Anyone may post there, and an audit row a post would let a flood grow the
audit chain without bound.

A :class:`RefusalTally` counts the refusals of each source address in a window of
:data:`WINDOW` seconds; when the window has passed, the next refusal (or the hub stopping)
hands its counts back as summaries, which the caller writes as one audit row a source (with
the count and the codes) and one log line. At most :data:`MAX_SOURCES` sources are counted by
name in a window; the rest together as ``other``: a window writes at most
``MAX_SOURCES + 1`` rows, however many posts and addresses a flood brings.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field, replace

from .. import audit
from ..db import Database

log = logging.getLogger(__name__)

#: the length of a window (seconds)
WINDOW = 300.0
#: the sources a window counts by name (the others as one)
MAX_SOURCES = 100
#: where the sources beyond :data:`MAX_SOURCES` are counted
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Summary:
    """One source's refused posts in one window: how many, by code, since when."""

    source: str
    count: int
    codes: dict[str, int]
    since: float


@dataclass
class RefusalTally:
    """The refused posts of the current window, by source (thread-safe)."""

    _started: float | None = None
    _counts: dict[str, Counter[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, source: str | None, code: str, now: float) -> list[Summary]:
        """Count a refusal from ``source`` at ``now``; the summaries of the window it closed
        (empty while the window runs)."""
        with self._lock:
            closed: list[Summary] = []
            if self._started is not None and now - self._started >= WINDOW:
                closed = self._take()
            if self._started is None:
                self._started = now
            key = source or "unknown"
            if key not in self._counts and len(self._counts) >= MAX_SOURCES:
                key = OTHER
            self._counts.setdefault(key, Counter())[code] += 1
            return closed

    def flush(self) -> list[Summary]:
        """The summaries counted so far (the hub stopping)."""
        with self._lock:
            return self._take()

    def _take(self) -> list[Summary]:
        since = self._started or 0.0
        found = [Summary(source, sum(codes.values()), dict(codes), since)
                 for source, codes in self._counts.items()]  # fmt: skip
        self._counts, self._started = {}, None
        return found


async def write(
    db: Database, summaries: list[Summary], actor: audit.Actor, action: str, target_type: str
) -> None:
    """A closed window's refusals: one audit row a source (``actor`` from that address, the
    count and codes), in one transaction, and one log line (counts only)."""
    if not summaries:
        return
    rows = [
        audit.values(
            replace(actor, ip=s.source[:45]),
            audit.Event(
                action,
                target_type,
                None,
                outcome="refused",
                detail={"count": s.count, "codes": s.codes,
                        "since": dt.datetime.fromtimestamp(s.since, dt.UTC).isoformat()},
            ),
        )
        for s in summaries
    ]  # fmt: skip
    async with db.transaction() as session:
        await session.run_sync(audit.append, rows)
    log.warning(
        "%s: %d refused from %d sources",
        action,
        sum(s.count for s in summaries),
        len(summaries),
    )
