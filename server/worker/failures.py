"""Telling a failure worth retrying from one that would only fail again.

Transient: the database or the way to it failed (down, cut, restarting, locked, a deadlock or
serialisation failure); the same work later may well succeed. Anything else (a value the
database refuses, a bug, a message that no longer parses) fails the same way every time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class TransientError(Exception):
    """Work that failed for a reason that may pass; the task retries it (with backoff)."""


#: the options of a task that retries :class:`TransientError` with backoff and jitter, and
#: nothing else (what would fail the same way again is handled, or raised, by the task)
RETRY_TRANSIENT: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": (TransientError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 20,
}

T = TypeVar("T")


def per_process(make: Callable[[], T]) -> Callable[[], T]:
    """``make()`` once, on first use, in the process that uses it: a task's engines and
    connections must not be made before the worker forks."""
    made: list[T] = []

    def get() -> T:
        if not made:
            made.append(make())
        return made[0]

    return get


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        # OperationalError covers connections lost or refused, locks, deadlocks and
        # serialisation failures; a refused value or constraint is a DataError/IntegrityError
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, OSError | DisconnectionError | PoolTimeoutError)


@contextlib.contextmanager
def transient_as_retry() -> Iterator[None]:
    """Re-raise a transient failure as :class:`TransientError` (what tasks retry); the type
    only in its message, as a database error's text may quote the values it refused."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise TransientError(type(exc).__name__) from exc
        raise
