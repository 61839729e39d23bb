"""The hub's collector schedule (server/collector.py): what survives a collection is frozen,
and cycles among frozen objects are freed once the frozen heap has grown enough."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from server.collector import THRESHOLDS, Collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector() -> Iterator[Collector]:
    thresholds = gc.get_threshold()
    collector = Collector(growth=1.2)
    collector.start()
    yield collector
    collector.stop()
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def cycle() -> weakref.ref[Node]:
    """A pair referring to each other, garbage once returned (only its weak reference left)."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_what_survives_a_collection_is_frozen(collector: Collector) -> None:
    before = gc.get_freeze_count()
    kept = [Node() for _ in range(1_000)]
    gc.collect(1)
    frozen = gc.get_freeze_count()
    assert frozen >= before + len(kept)
    del kept[:]
    assert gc.get_freeze_count() <= frozen - 1_000  # let go by reference counting as ever


def test_cycles_among_frozen_objects_wait_for_the_heap_to_grow(collector: Collector) -> None:
    gc.collect(1)
    first, second = Node(), Node()
    first.other, second.other = second, first
    alive = weakref.ref(first)
    gc.collect(1)  # the pair survives (still referred to here), so it is frozen
    del first, second
    gc.collect()
    assert alive() is not None  # garbage, but frozen: not walked
    assert collector.walks == 0

    grown = [Node() for _ in range(int(gc.get_freeze_count() * 0.25))]
    gc.collect(1)  # the frozen heap is a quarter bigger: unfrozen for the next full walk
    assert gc.get_threshold()[2] == 0  # which comes with the next young collection
    gc.collect(1)  # (a young collection does not freeze it again)
    gc.collect()
    assert collector.walks == 1
    assert alive() is None
    assert gc.get_threshold() == THRESHOLDS
    assert len(grown) > 0


def test_young_garbage_cycles_are_collected_as_always(collector: Collector) -> None:
    dead = cycle()
    gc.collect(1)
    assert dead() is None
