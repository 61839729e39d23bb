"""Sign-in throttling: growing delays per key, forgotten with time, never a hard lockout.

Keys: ``user:<name>`` and ``ip:<address>`` for an ordinary attempt, ``device:<id>`` alone for
an attempt from a known device (:mod:`server.auth.devices`), so an attacker who keeps an
account throttled does not keep its owner out. After three failures on a key, each further try
must wait 1, 2, 4, ... seconds, at most 15 minutes. Failures are forgotten one every ten
minutes. Unknown usernames are counted like known ones, so the delays tell nothing about which
accounts exist. The state is in the database, shared by every hub process.

The check and the count are one step: :meth:`Throttle.reserve` locks the keys' rows, refuses
the attempt if one must still wait, and otherwise counts it as a failure before the password or
code is even looked at, so concurrent attempts see each other (a burst gets the few tries a
sequence would). A right answer takes its count back (:meth:`Throttle.forgive`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import select

from ..db import Database, insert_ignoring_conflicts
from ..db.models import utcnow
from .models import LoginThrottle

FREE_FAILURES = 3
MAX_DELAY = 900
#: one failure is forgotten per this much time
DECAY = dt.timedelta(minutes=10)

Clock = Callable[[], dt.datetime]
#: the time the sign-in pages go by (tests set their own)
CLOCK: web.AppKey[Clock] = web.AppKey("sign_in_clock")


def delay(failures: int) -> int:
    """Seconds the next try must wait after ``failures`` failures."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(2 ** (failures - FREE_FAILURES), MAX_DELAY))


def _decay(row: LoginThrottle, now: dt.datetime) -> None:
    """Forget the failures whose time has passed; ``updated_at`` is when the next one goes."""
    steps = max(0, int((now - row.updated_at) / DECAY))
    row.failures = max(0, row.failures - steps)
    row.updated_at = now if row.failures == 0 else row.updated_at + steps * DECAY


#: a key's new failures and wait, from its row
Change = Callable[[LoginThrottle], tuple[int, dt.datetime | None]]


def _one_less(row: LoginThrottle) -> tuple[int, dt.datetime | None]:
    return row.failures - 1, None


def _reduced(row: LoginThrottle) -> tuple[int, dt.datetime | None]:
    failures = row.failures - FREE_FAILURES
    return failures, row.blocked_until if delay(failures) else None


def _none(row: LoginThrottle) -> tuple[int, dt.datetime | None]:
    return 0, None


class Throttle:
    def __init__(self, db: Database, clock: Clock = utcnow, free: int = FREE_FAILURES) -> None:
        self._db = db
        self._clock = clock
        #: failures before the waits start (more for a key many people share, an address)
        self._extra = max(0, free - FREE_FAILURES)

    async def reserve(self, keys: list[str]) -> int:
        """Seconds the caller must wait (the attempt refused, nothing counted), or 0: the
        attempt may go ahead and is already counted as a failure."""
        now = self._clock()
        keys = sorted(set(keys))  # one lock order for every caller
        async with self._db.transaction() as session:
            insert = insert_ignoring_conflicts(LoginThrottle, self._db.engine.dialect.name)
            await session.execute(
                insert, [{"key": k, "failures": 0, "updated_at": now} for k in keys]
            )
            rows = list(
                await session.scalars(
                    select(LoginThrottle)
                    .where(LoginThrottle.key.in_(keys))
                    .order_by(LoginThrottle.key)
                    .with_for_update()
                )
            )
            blocked = [r.blocked_until for r in rows if r.blocked_until and r.blocked_until > now]
            if blocked:
                return int((max(blocked) - now).total_seconds()) + 1
            for row in rows:
                _decay(row, now)
                row.failures += 1
                seconds = delay(row.failures - self._extra)
                row.blocked_until = now + dt.timedelta(seconds=seconds) if seconds else None
        return 0

    async def take_back(self, keys: list[str]) -> None:
        """The reserved attempt was right after all: its failure is taken back, and so is the
        wait it set (the wait of the failures before it was served, or it could not have been
        reserved)."""
        await self._adjust(dict.fromkeys(keys, _one_less))

    async def signed_in(self, cleared: list[str], reduced: list[str]) -> None:
        """A whole sign-in succeeded: the ``cleared`` keys (the account, the device) start
        again; the ``reduced`` ones (the address) forget as many failures as are free, enough
        for the typos of whoever just signed in, too few for a guesser with an account of their
        own to clear the address for a new round."""
        await self._adjust({**dict.fromkeys(reduced, _reduced), **dict.fromkeys(cleared, _none)})

    async def _adjust(self, changes: dict[str, Change]) -> None:
        """Apply each key's change to its row (after its decay); rows left at 0 go."""
        now = self._clock()
        async with self._db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(LoginThrottle)
                    .where(LoginThrottle.key.in_(sorted(changes)))
                    .order_by(LoginThrottle.key)
                    .with_for_update()
                )
            )
            for row in rows:
                _decay(row, now)
                failures, row.blocked_until = changes[row.key](row)
                row.failures = max(0, failures)
                if row.failures == 0:
                    await session.delete(row)
