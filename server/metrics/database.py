"""The gauges read from the database when ``/metrics`` is scraped: queue depths and the age
of their oldest entry, the outbox's backlog and dead letters, open consults.

Each is one indexed query (the check queue: one index probe a pharmacy, through
``ix_prescriptions_pharmacy_state``; the outboxes through their ``state_due`` indexes); the
answer is kept :data:`KEPT` seconds, so scrapers however many cost the database one read of
each that often.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from eprescribe.workflow import State
from signaling.consults import ConsultState
from signaling.policy import OVER

from ..admin.models import Pharmacy
from ..consults.models import ConsultRow
from ..db import Database
from ..db.models import utcnow
from ..notifications import QUEUE as NOTIFY_QUEUE
from ..notifications import store as notifications
from ..notifications.models import Notification
from ..outbox import QUEUE as OUTBOUND_QUEUE
from ..outbox import store as outbox
from ..outbox.models import OutboundMessage
from ..prescriptions.models import Prescription

log = logging.getLogger(__name__)
#: seconds a reading is served again before the database is asked anew
KEPT = 5.0
#: how long the reading may take; past it the scrape says the database did not answer
TIMEOUT = 5.0
CHECK_QUEUE = "telepharm.checks"
#: the states a queue's entry waits in (its backlog) and the state of its dead letters
_OUTBOXES = (
    (OUTBOUND_QUEUE, OutboundMessage, (outbox.PENDING, outbox.SENDING, outbox.RETRYING)),
    (
        NOTIFY_QUEUE,
        Notification,
        (notifications.PENDING, notifications.SENDING, notifications.RETRYING),
    ),
)
_OPEN_CONSULTS = sorted(set(ConsultState) - OVER)


@dataclass(frozen=True, slots=True)
class Reading:
    """What the database said, at ``taken`` (``time.monotonic``)."""

    taken: float
    ok: bool
    #: queue -> (entries waiting, age of the oldest in seconds)
    queues: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: queue -> state -> count (the outboxes' backlog by state, and their dead letters)
    outbox: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the check queue: prescriptions being checked now
    checking: int = 0
    #: consult state -> open consults
    consults: dict[str, int] = field(default_factory=dict)

    def families(self) -> Iterator[Metric]:

        up = GaugeMetricFamily(
            "telepharm_metrics_database_up", "Whether the scrape's database reading worked"
        )
        up.add_metric([], 1 if self.ok else 0)
        yield up
        if not self.ok:
            return
        depth = GaugeMetricFamily(
            "telepharm_queue_depth",
            "Entries waiting in a queue (in the database)",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "telepharm_queue_oldest_seconds",
            "Age of the oldest entry waiting in a queue (0: none waits)",
            labels=["queue"],
        )
        for queue, (count, age) in sorted(self.queues.items()):
            depth.add_metric([queue], count)
            oldest.add_metric([queue], age)
        yield depth
        yield oldest
        checking = GaugeMetricFamily(
            "telepharm_checks_running", "Prescriptions whose checks have started, not finished"
        )
        checking.add_metric([], self.checking)
        yield checking
        messages = GaugeMetricFamily(
            "telepharm_outbox_messages",
            "Outbound messages and notifications not yet done, and dead letters, by state",
            labels=["queue", "state"],
        )
        for queue, states in sorted(self.outbox.items()):
            for state, count in sorted(states.items()):
                messages.add_metric([queue, state], count)
        yield messages
        consults = GaugeMetricFamily(
            "telepharm_consults_open", "Consults not over, by state", labels=["state"]
        )
        for state in _OPEN_CONSULTS:
            consults.add_metric([state.value], self.consults.get(state.value, 0))
        yield consults


class DatabaseGauges:
    """Readings of one process, kept :data:`KEPT` seconds and taken one at a time."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._last: Reading | None = None
        self._lock = asyncio.Lock()

    async def reading(self) -> Reading:
        async with self._lock:
            last = self._last
            if last is not None and time.monotonic() - last.taken < KEPT:
                return last
            try:
                async with asyncio.timeout(TIMEOUT):
                    self._last = await self._read()
            except Exception as exc:  # the database away: the scrape says so, the rest shows
                log.warning("metrics: the database reading failed (%s)", type(exc).__name__)
                log.debug("metrics: the database reading failed", exc_info=exc)
                self._last = Reading(time.monotonic(), ok=False)
            return self._last

    async def _read(self) -> Reading:
        now = utcnow()
        async with self._db.sessions() as session:
            waiting = Prescription.pharmacy_id == Pharmacy.id
            received = (waiting, Prescription.state == State.RECEIVED.value)
            checking = (waiting, Prescription.state == State.CHECKING.value)
            per_pharmacy = await session.execute(
                select(
                    select(func.count()).where(*received).scalar_subquery(),
                    select(func.min(Prescription.received_at)).where(*received).scalar_subquery(),
                    select(func.count()).where(*checking).scalar_subquery(),
                ).select_from(Pharmacy)
            )
            depth, checking_now, oldest = 0, 0, None
            for count, first, started in per_pharmacy:
                depth += count
                checking_now += started
                if first is not None and (oldest is None or first < oldest):
                    oldest = first
            queues = {CHECK_QUEUE: (depth, _age(now, oldest))}
            outboxes: dict[str, dict[str, int]] = {}
            for queue, model, backlog in _OUTBOXES:
                states = (*backlog, "dead")
                rows = await session.execute(
                    select(model.state, func.count(), func.min(model.created_at))
                    .where(model.state.in_(states))
                    .group_by(model.state)
                )
                counts = dict.fromkeys(states, 0)
                first_waiting = None
                for state, count, first in rows:
                    counts[state] = count
                    if state in backlog and (first_waiting is None or first < first_waiting):
                        first_waiting = first
                outboxes[queue] = counts
                queues[queue] = (sum(counts[s] for s in backlog), _age(now, first_waiting))
            consults = await session.execute(
                select(ConsultRow.state, func.count())
                .where(ConsultRow.state.in_([s.value for s in _OPEN_CONSULTS]))
                .group_by(ConsultRow.state)
            )
            return Reading(
                time.monotonic(),
                ok=True,
                queues=queues,
                outbox=outboxes,
                checking=checking_now,
                consults={str(row[0]): int(row[1]) for row in consults},
            )


def _age(now: dt.datetime, oldest: dt.datetime | None) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
