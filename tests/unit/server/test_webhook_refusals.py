"""The webhook's refused posts counted a window at a time: a window's summaries come back
when the next refusal comes after it (or at the flush), one a source, and however many
sources a flood brings, at most ``MAX_SOURCES + 1`` a window."""

from __future__ import annotations

from server.payments.refusals import MAX_SOURCES, OTHER, WINDOW, RefusalTally


def test_a_window_is_summarised_once_by_source() -> None:
    tally = RefusalTally()
    for second in range(10):
        assert tally.note("198.51.100.7", "signature_missing", 1000.0 + second) == []
    assert tally.note("203.0.113.9", "signature_invalid", 1001.0) == []
    closed = tally.note("198.51.100.7", "signature_stale", 1000.0 + WINDOW)
    assert {(s.source, s.count, s.since) for s in closed} == {
        ("198.51.100.7", 10, 1000.0),
        ("203.0.113.9", 1, 1000.0),
    }
    (left,) = tally.flush()
    assert (left.source, left.codes) == ("198.51.100.7", {"signature_stale": 1})
    assert tally.flush() == []


def test_a_flood_from_many_sources_stays_bounded() -> None:
    tally = RefusalTally()
    for n in range(MAX_SOURCES * 50):
        assert tally.note(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", "signature_missing",
                          5.0) == []  # fmt: skip
    closed = tally.note(None, "signature_missing", 5.0 + WINDOW)
    assert len(closed) == MAX_SOURCES + 1
    other = next(s for s in closed if s.source == OTHER)
    assert other.count == MAX_SOURCES * 49
    assert sum(s.count for s in closed) == MAX_SOURCES * 50
    assert [s.source for s in tally.flush()] == ["unknown"]
