"""When a hub process's garbage collector walks what (``telepharm serve``).

A hub holds a large heap that lives long (5,000 open consults are about 750,000 tracked
objects: sockets, parsers, tasks, participants) beside objects that live for one message.
CPython collects by generations and walks the whole heap at each full collection: about a
second at that size on a 2-core machine, the event loop held all that time, every couple of
minutes (tests/benchmarks/README.md, consults.py). So here everything that survives a
collection of generation 1 or 2 is frozen (``gc.freeze``: left out of every later collection,
still freed by reference counting as usual), and a collection walks only what came since the
last one.

What freezing gives up is collecting reference cycles among frozen objects once they are
garbage. So when the frozen heap has grown by :data:`GROWTH` since everything was last walked,
it is unfrozen and the next collection walks everything (and frees those cycles); what
survives is the new baseline. Cycles left as garbage are so bounded by half of the heap as it
was last walked, and the walks of everything come as the heap grows (a morning's consults
opening) or as garbage cycles pile up, not every couple of minutes.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Any

#: how much the frozen heap may grow before everything is walked again
GROWTH = 1.5
#: a young collection every 10,000 allocations (the default 700 walks each request's objects
#: several times while they are alive: a fifth of the intake's CPU time, tests/benchmarks)
THRESHOLDS = (10_000, 10, 10)


class Collector:
    """The policy above, from :meth:`start` (after start-up: modules, metadata and compiled
    specs are the first baseline) to :meth:`stop`."""

    def __init__(self, growth: float = GROWTH) -> None:
        self._growth = growth
        self._baseline = 0
        #: frozen since the baseline (at most: some may have been let go since)
        self._added = 0
        #: unfrozen, waiting for the full collection that walks everything
        self._walking = False
        #: full walks since start (for tests and diagnosis)
        self.walks = 0

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        self._baseline, self._added = gc.get_freeze_count(), 0
        gc.set_threshold(*THRESHOLDS)
        gc.callbacks.append(self._collected)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._collected)

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        """After each collection (a callback of :mod:`gc`: nothing here allocates much)."""
        generation = info["generation"]
        if phase != "stop" or generation == 0:
            return
        if self._walking:
            if generation == 2:  # everything walked: what survived is the new baseline
                self._walking = False
                self.walks += 1
                gc.freeze()
                self._baseline, self._added = gc.get_freeze_count(), 0
                gc.set_threshold(*THRESHOLDS)
            return
        # what this freeze adds: the survivors of this collection (frozen after the last one,
        # generation 2 holds only them); counting the whole frozen heap is a walk of a list
        # of a million objects, so it is done only when these additions may pass the bound
        self._added += len(gc.get_objects(generation=2))
        gc.freeze()
        if self._added <= self._baseline * (self._growth - 1):
            return
        self._added = gc.get_freeze_count() - self._baseline  # less what was let go since
        if self._added > self._baseline * (self._growth - 1):
            gc.unfreeze()
            self._walking = True
            # the walk at the next young collection rather than ten collections of
            # generation 1 later (a collector callback cannot collect)
            gc.set_threshold(THRESHOLDS[0], THRESHOLDS[1], 0)
