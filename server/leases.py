"""What the hub's outboxes share (the SCRIPT outbox, :mod:`server.outbox`, and the patient
notifications', :mod:`server.notifications.store`): taking due rows for an attempt under a
lease in one statement, and the wait between attempts.

A table that uses them has ``id``, ``state``, ``attempts``, ``next_attempt_at`` (when it is
due; while it is held, when the hold lapses), ``dead_after`` and ``updated_at`` columns.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select, update
from sqlalchemy.orm import Session


def claim(
    session: Session,
    model: Any,
    which: Sequence[ColumnElement[bool]],
    now: dt.datetime,
    lease: float,
    bound: float,
    room: int,
    returning: Sequence[Any],
    holding: str = "sending",
) -> Sequence[Row[Any]]:
    """Take up to ``room`` rows of ``model`` that match ``which`` (what is due), oldest due
    first: each is ``holding`` for ``lease`` seconds, one more attempt, its ``dead_after``
    set ``bound`` seconds from now by its first attempt; the ``returning`` columns of those
    taken. A row another transaction holds right now is skipped, never waited for."""
    due = (
        select(model.id)
        .where(*which)
        .order_by(model.next_attempt_at, model.id)
        .limit(room)
        .with_for_update(skip_locked=True)
    )
    return session.execute(
        update(model)
        .where(model.id.in_(due))
        .values(
            state=holding,
            attempts=model.attempts + 1,
            next_attempt_at=now + dt.timedelta(seconds=lease),
            dead_after=func.coalesce(model.dead_after, now + dt.timedelta(seconds=bound)),
            updated_at=now,
        )
        .returning(*returning)
        .execution_options(synchronize_session=False)
    ).all()


def jittered(first: float, longest: float, attempts: int) -> float:
    """The wait after the ``attempts``-th failure: doubling from ``first`` up to ``longest``,
    then somewhere in its upper half (so receivers that failed together are not all tried
    again at once)."""
    wait = min(longest, first * 2 ** max(0, attempts - 1))
    return wait * (0.5 + secrets.randbelow(1001) / 2000)
