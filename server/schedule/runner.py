"""The schedule's runner: each job run when due and its lease is free (:class:`Schedule`: the
scheduled notices, and the payment plans' instalments when card payments are configured),
and a hub process's own loop of it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from ..background import BACKGROUND
from ..db import sync_engine
from ..db.models import utcnow
from ..notifications import NOTIFY
from ..notifications.triggers import HubTriggers
from ..payments.plans import EVERY, InstalmentJob
from ..payments.provider import StripeProvider
from ..settings import SETTINGS, Settings
from . import JOB, jobs, lease

log = logging.getLogger(__name__)
#: how often the refill reminders run at most (seconds)
REFILL_EVERY = 3600.0
#: what finds a kind's occasions in a unit of work
Finder = Callable[[Session], list[jobs.Occasion]]
#: one run of a job at a moment: how many it did (the notifications it wrote added to the list)
Work = Callable[[dt.datetime, list[uuid.UUID]], int]
#: the job of the payment plans' instalments: its lease's name and its key in :attr:`Ran.counts`
PLANS_JOB = "payment_plans"
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
    """The periodic jobs of one process: each run when due and its lease is free."""

    sessions: sessionmaker[Session]
    triggers: HubTriggers
    interval: float
    not_collected_days: int
    keep_days: int
    #: the payment plans' job (``None``: card payments are not configured)
    plans: InstalmentJob | None = None
    holder: str = field(default_factory=holder_name)
    #: held by a run: :meth:`close` waits for one still going (a hub stopping cancels its
    #: loop, not the thread the run is in)
    _busy: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        """Blocking, on an engine of its own (a hub runs it in a thread); the caller
        publishes what a run wrote (:attr:`Ran.written`) on its own thread."""
        engine = sync_engine(settings.sync_database_url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        triggers = HubTriggers.from_settings(settings)
        provider = StripeProvider.from_settings(settings)
        return cls(
            sessions,
            triggers,
            settings.schedule_interval,
            settings.not_collected_days,
            settings.return_to_stock_days,
            InstalmentJob(sessions, provider, triggers) if provider is not None else None,
        )

    def close(self) -> None:
        with self._busy:
            engine = self.sessions.kw.get("bind")
            if engine is not None:
                engine.dispose()

    def run_due(self, now: dt.datetime | None = None) -> Ran | None:
        """Each job whose lease this process takes (one a job: see :mod:`.lease`): what the
        run did; ``None`` when every lease was held (running elsewhere, or run less than its
        interval ago)."""
        with self._busy:
            return self._run_due(now or utcnow())

    def _run_due(self, now: dt.datetime) -> Ran | None:
        counts: dict[str, int] = {}
        written: list[uuid.UUID] = []
        for kind, (name, every, work) in self._jobs(now).items():
            with self.sessions.begin() as session:
                if not lease.take(session, name, self.holder, now, RUN_TIMEOUT):
                    continue
            try:
                counts[kind] = work(now, written)
            finally:
                with self.sessions.begin() as session:
                    next_run = now + dt.timedelta(seconds=every)
                    lease.release(session, name, self.holder, utcnow(), next_run)
        if not counts:
            return None
        if any(counts.values()):
            log.info("scheduled jobs done: %s", counts)
        return Ran(counts, written)

    def run(self, now: dt.datetime, only: str | None = None) -> Ran:
        """Every job (or the job ``only``), without the leases; what was done. Idempotent:
        see :mod:`.jobs` and :class:`~server.payments.plans.InstalmentJob`."""
        written: list[uuid.UUID] = []
        counts = {kind: work(now, written)
                  for kind, (_name, _every, work) in self._jobs(now).items()
                  if only in (None, kind)}  # fmt: skip
        return Ran(counts, written)

    def _jobs(self, now: dt.datetime) -> dict[str, tuple[str, float, Work]]:
        """Each job: its lease's name, how often it runs, and what it does."""

        def notices(find: Finder) -> Work:
            return lambda now, written: self._run_one(find, now, written)

        found: dict[str, tuple[str, float, Work]] = {
            "prescription_received": (
                f"{JOB}.prescription_received",
                self.interval,
                notices(lambda s: jobs.received(s, now)),
            ),
            # due by the day, and the most reading (every fill handed over lately): hourly
            "refill_due": (
                f"{JOB}.refill_due",
                max(self.interval, REFILL_EVERY),
                notices(lambda s: jobs.refills(s, now)),
            ),
            "not_collected_reminder": (
                f"{JOB}.not_collected_reminder",
                self.interval,
                notices(
                    lambda s: jobs.not_collected(s, now, self.not_collected_days, self.keep_days)
                ),
            ),
        }
        if self.plans is not None:
            plans = self.plans
            found[PLANS_JOB] = (
                PLANS_JOB,
                max(self.interval, EVERY),
                plans.run,
            )
        return found

    def _run_one(self, find: Finder, now: dt.datetime, written: list[uuid.UUID]) -> int:
        """One kind's occasions, batch by batch (each its unit of work); how many written
        (added to ``written``)."""
        count = 0
        while True:
            with self.sessions.begin() as session:
                found = find(session)
                new = jobs.spend(session, found, self.triggers, now)
            written += new
            count += len(new)
            if len(found) < jobs.BATCH:
                return count


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
