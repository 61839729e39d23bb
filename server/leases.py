"""What the hub's outboxes share (the SCRIPT outbox, :mod:`server.outbox`, and the patient
notifications', :mod:`server.notifications.store`): taking due rows for an attempt under a
lease in one statement, and the wait between attempts.

A table that uses them has ``id``, ``state``, ``attempts``, ``next_attempt_at`` (when it is
due; while it is held, when the hold lapses), ``dead_after`` and ``updated_at`` columns.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, Row, Update, bindparam, func, select, update
from sqlalchemy.orm import Session


def claim(
    session: Session,
    model: Any,
    due: Sequence[ColumnElement[bool]],
    wanted: Sequence[Any],
    now: dt.datetime,
    lease: float,
    bound: float,
    room: int,
    returning: Sequence[Any],
    holding: str = "sending",
) -> list[Row[Any]]:
    """Take for an attempt each of the rows ``wanted`` (by ID) that matches ``due``, then
    (when one of them was) other rows that match it, oldest due first, up to ``room`` in all;
    the ``returning`` columns (``id`` among them) of those taken, ``wanted`` first in their
    order. Each taken is
    ``holding`` for ``lease`` seconds, one more attempt, its ``dead_after`` set ``bound``
    seconds from now by its first attempt.

    One statement takes the wanted, waiting for a row another transaction holds (a reply
    being recorded, an attempt's late conclusion: neither publishes the row again after it),
    locked in the order of their IDs so that two workers never wait on each other in a
    circle; one takes the others, skipping rows another transaction holds (someone else's to
    send)."""
    taken = _take(session, model, (model.id.in_(wanted), *due), now, lease, bound, room,
                  returning, holding, wait=True)  # fmt: skip
    position = {row_id: i for i, row_id in enumerate(wanted)}
    taken.sort(key=lambda row: position[row.id])
    if taken and len(taken) < room:
        others = (model.id.not_in(wanted), *due)
        taken += _take(session, model, others, now, lease, bound, room - len(taken),
                       returning, holding, wait=False)  # fmt: skip
    return taken


def _take(
    session: Session,
    model: Any,
    which: Sequence[ColumnElement[bool]],
    now: dt.datetime,
    lease: float,
    bound: float,
    room: int,
    returning: Sequence[Any],
    holding: str,
    *,
    wait: bool,
) -> list[Row[Any]]:
    order = (model.id,) if wait else (model.next_attempt_at, model.id)
    chosen = (
        select(model.id)
        .where(*which)
        .order_by(*order)
        .limit(room)
        .with_for_update(skip_locked=not wait)
    )
    return list(
        session.execute(
            update(model)
            .where(model.id.in_(chosen))
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
    )


class Claim:
    """:func:`claim` for one table, its two statements built once and their values bound at
    each call: building a statement and its cache key cost a worker about as much as running
    it, for every batch it claims. ``due`` makes the conditions of a row due at the
    parameter it is given (the time of the claim), from the table's columns
    (``model.__table__``: plain SQL statements, without the ORM's layer at each run).

    The others (beyond ``wanted``) are taken by state, then oldest due first: the order of
    an index on ``(state, next_attempt_at)``, which the table must have. (Each row has its
    own task, or the sweep's, so the others' order is only which go early.)"""

    def __init__(
        self,
        model: Any,
        due: Callable[[Any], Sequence[ColumnElement[bool]]],
        returning: Sequence[Any],
        holding: str = "sending",
    ) -> None:
        table = model.__table__
        now = bindparam("now", type_=table.c.next_attempt_at.type)
        wanted = bindparam("wanted", expanding=True, type_=table.c.id.type)
        conditions = tuple(due(now))
        columns = [table.c[column.key] for column in returning]
        self._wanted = _claim_statement(
            table, (table.c.id.in_(wanted), *conditions), now, columns, holding, wait=True
        )
        self._others = _claim_statement(
            table, (table.c.id.not_in(wanted), *conditions), now, columns, holding, wait=False
        )

    def __call__(
        self,
        session: Session,
        wanted: Sequence[Any],
        now: dt.datetime,
        lease: float,
        bound: float,
        room: int,
    ) -> list[Row[Any]]:
        """As :func:`claim`, whose arguments these are."""
        values = {
            "now": now,
            "wanted": list(wanted),
            "until": now + dt.timedelta(seconds=lease),
            "bound_at": now + dt.timedelta(seconds=bound),
            "room": room,
        }
        taken = list(session.execute(self._wanted, values).all())
        position = {row_id: i for i, row_id in enumerate(wanted)}
        taken.sort(key=lambda row: position[row.id])
        if taken and len(taken) < room:
            values["room"] = room - len(taken)
            taken += session.execute(self._others, values).all()
        return taken


def _claim_statement(
    table: Any,
    which: Sequence[ColumnElement[bool]],
    now: Any,
    returning: Sequence[Any],
    holding: str,
    *,
    wait: bool,
) -> Update:
    # the others in the order of the index on (state, next_attempt_at), so that the LIMIT
    # stops the scan early: by due time alone across the states, PostgreSQL would read and
    # sort every due row for each batch (a backlog of N rows, O(N) a batch)
    order = (table.c.id,) if wait else (table.c.state, table.c.next_attempt_at)
    chosen = (
        select(table.c.id)
        .where(*which)
        .order_by(*order)
        .limit(bindparam("room", type_=Integer))
        .with_for_update(skip_locked=not wait)
    )
    return (
        update(table)
        .where(table.c.id.in_(chosen))
        .values(
            state=holding,
            attempts=table.c.attempts + 1,
            next_attempt_at=bindparam("until", type_=table.c.next_attempt_at.type),
            dead_after=func.coalesce(
                table.c.dead_after, bindparam("bound_at", type_=table.c.dead_after.type)
            ),
            updated_at=now,
        )
        .returning(*returning)
    )


def locked(
    session: Session, model: Any, ids: Sequence[Any], options: Sequence[Any] = ()
) -> dict[Any, Any]:
    """The rows of ``model`` with ``ids``, read and locked in one statement for an attempt's
    conclusion, in the order of their IDs (two workers never wait on each other in a
    circle), by ID; ``options``: the query's loader options (columns a conclusion does not
    read deferred)."""
    rows = session.scalars(
        select(model)
        .where(model.id.in_(ids))
        .order_by(model.id)
        .with_for_update()
        .options(*options)
    )
    return {row.id: row for row in rows}


def jittered(first: float, longest: float, attempts: int) -> float:
    """The wait after the ``attempts``-th failure: doubling from ``first`` up to ``longest``,
    then somewhere in its upper half (so receivers that failed together are not all tried
    again at once)."""
    wait = min(longest, first * 2 ** max(0, attempts - 1))
    return wait * (0.5 + secrets.randbelow(1001) / 2000)
