"""Sign-in throttling: growing delays per account and per address, never a hard lockout.

After three failures in a row on a key (``user:<name>`` or ``ip:<address>``), each further
try must wait 1, 2, 4, ... seconds, at most 15 minutes; a success on the account clears its
count. Unknown usernames are counted like known ones, so the delays tell nothing about which
accounts exist. The state is in the database, shared by every hub process.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..db import Database
from ..db.models import LoginThrottle, utcnow

FREE_FAILURES = 3
MAX_DELAY = 900


def delay(failures: int) -> int:
    """Seconds the next try must wait after ``failures`` failures in a row."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(2 ** (failures - FREE_FAILURES), MAX_DELAY))


async def wait(db: Database, keys: list[str]) -> int:
    """Seconds until the next try is allowed (0: now)."""
    now = utcnow()
    async with db.sessions() as session:
        blocked = list(
            await session.scalars(
                select(LoginThrottle.blocked_until).where(
                    LoginThrottle.key.in_(keys), LoginThrottle.blocked_until > now
                )
            )
        )
    return max((int((b - now).total_seconds()) + 1 for b in blocked if b), default=0)


async def failed(db: Database, keys: list[str]) -> None:
    for key in keys:
        for _ in range(2):  # a concurrent first failure may insert the row first
            try:
                await _count(db, key)
                break
            except IntegrityError:
                continue


async def _count(db: Database, key: str) -> None:
    now = utcnow()
    async with db.transaction() as session:
        row = await session.get(LoginThrottle, key, with_for_update=True)
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
        row.failures += 1
        row.updated_at = now
        seconds = delay(row.failures)
        row.blocked_until = now + dt.timedelta(seconds=seconds) if seconds else None


async def cleared(db: Database, key: str) -> None:
    async with db.transaction() as session:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
