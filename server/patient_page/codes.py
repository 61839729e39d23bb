"""Sign-in codes written and sent after the answer: "send me a code" answers at once, the
same whether the address is known or not, and the code is looked up, written and published
by a task of the app's own (:class:`CodeSender`), so the answer's time says nothing of what
matched. The tasks are the app's: the hub stopping waits for those still going
(:meth:`CodeSender.drain`), so an asked code is not lost to a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from sqlalchemy import select

from eprescribe.contacts import ContactKind

from .. import audit
from ..admin.models import Pharmacy
from ..auth.throttle import CLOCK
from ..db import DATABASE, Database
from ..notifications import NOTIFY, Notify
from ..notifications import store as outbox
from . import store

log = logging.getLogger(__name__)
#: codes being written at once at most; more asks meanwhile (a flood past the throttle) are
#: answered the same and dropped, said in the log
MAX_IN_FLIGHT = 256


class CodeSender:
    """The app's sign-in codes on their way (one task an ask)."""

    def __init__(
        self, db: Database, clock: Callable[[], dt.datetime], notify: Notify | None
    ) -> None:
        self._db = db
        self._clock = clock
        self._notify = notify
        self._tasks: set[asyncio.Task[None]] = set()

    def ask(self, actor: audit.Actor, ncpdpid: str, read: tuple[ContactKind, str] | None) -> None:
        """Write and send the codes for ``read`` at the pharmacy ``ncpdpid``, after the
        caller has answered (an unreadable address or an unknown pharmacy: nothing)."""
        if len(self._tasks) >= MAX_IN_FLIGHT:
            log.warning("sign-in code dropped: %d being written", len(self._tasks))
            return
        task = asyncio.get_running_loop().create_task(self._send(actor, ncpdpid, read))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # its type only: a message may carry an address
            log.error("sign-in code not sent: %s", type(task.exception()).__name__)

    async def _send(
        self, actor: audit.Actor, ncpdpid: str, read: tuple[ContactKind, str] | None
    ) -> None:
        async with self._db.transaction() as session:
            pharmacy = await session.scalar(select(Pharmacy).where(Pharmacy.ncpdpid == ncpdpid))
            if pharmacy is not None and read is not None:
                await store.send_codes(session, actor, pharmacy.id, read[0], read[1], self._clock())
            written = outbox.enqueued(session)
        if written and self._notify is not None:
            self._notify(written)

    async def drain(self) -> None:
        """Wait for every code on its way (the hub stopping; a test that reads the outbox)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


CODES: web.AppKey[CodeSender] = web.AppKey("sign_in_codes", CodeSender)


async def codes_ctx(app: web.Application) -> AsyncIterator[None]:
    sender = app[CODES] = CodeSender(app[DATABASE], app[CLOCK], app.get(NOTIFY))
    yield
    await sender.drain()
