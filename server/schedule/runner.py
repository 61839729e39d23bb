"""The scheduled notices' runner: one run when due and the lease is free (:class:`Schedule`),
and a hub process's own loop of it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from ..background import BACKGROUND
from ..db import sync_engine
from ..db.models import utcnow
from ..notifications import NOTIFY
from ..notifications.triggers import HubTriggers
from ..settings import SETTINGS, Settings
from . import JOB, jobs, lease

log = logging.getLogger(__name__)
#: how long a run may hold the lease before another process may take it (a run that died)
RUN_TIMEOUT = 600.0


def holder_name() -> str:
    """This process, as a lease names it."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Ran:
    """What one run wrote: how many by kind, and the notifications to publish."""

    counts: dict[str, int]
    written: list[uuid.UUID]


@dataclass
class Schedule:
    """The scheduled notices of one process: run when due and the lease is free."""

    sessions: sessionmaker[Session]
    triggers: HubTriggers
    interval: float
    not_collected_days: int
    keep_days: int
    holder: str = field(default_factory=holder_name)

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        """Blocking, on an engine of its own (a hub runs it in a thread); the caller
        publishes what a run wrote (:attr:`Ran.written`) on its own thread."""
        engine = sync_engine(settings.sync_database_url)
        return cls(
            sessionmaker(engine, expire_on_commit=False),
            HubTriggers.from_settings(settings),
            settings.schedule_interval,
            settings.not_collected_days,
            settings.return_to_stock_days,
        )

    def close(self) -> None:
        engine = self.sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def run_due(self, now: dt.datetime | None = None) -> Ran | None:
        """One run if this process takes the lease: what it wrote; ``None``
        when another process holds it (running, or ran less than an interval ago)."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            if not lease.take(session, JOB, self.holder, now, RUN_TIMEOUT):
                return None
        try:
            return self.run(now)
        finally:
            with self.sessions.begin() as session:
                next_run = now + dt.timedelta(seconds=self.interval)
                lease.release(session, JOB, self.holder, utcnow(), next_run)

    def run(self, now: dt.datetime) -> Ran:
        """Every kind's occasions, batch by batch (each its unit of work); what was
        written. Idempotent: see :mod:`.jobs`."""
        finders = {
            "prescription_received": lambda s: jobs.received(s, now),
            "refill_due": lambda s: jobs.refills(s, now),
            "not_collected_reminder": lambda s: jobs.not_collected(
                s, now, self.not_collected_days, self.keep_days
            ),
        }
        counts: dict[str, int] = {}
        everything: list[uuid.UUID] = []
        for kind, find in finders.items():
            counts[kind] = 0
            while True:
                with self.sessions.begin() as session:
                    found = find(session)
                    written = jobs.spend(session, found, self.triggers, now)
                everything += written
                counts[kind] += len(written)
                if len(found) < jobs.BATCH:
                    break
        if any(counts.values()):
            log.info("scheduled notices written: %s", counts)
        return Ran(counts, everything)


async def schedule_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    schedule = Schedule.from_settings(settings)
    notify = app.get(NOTIFY)

    async def step() -> None:
        ran = await asyncio.to_thread(schedule.run_due)
        if ran is not None and ran.written and notify is not None:
            notify(ran.written)  # else the notifications sweep queues them

    async with app[BACKGROUND].every(
        "scheduled_notices", settings.schedule_interval, step, timeout=RUN_TIMEOUT
    ):
        yield
    await asyncio.to_thread(schedule.close)
