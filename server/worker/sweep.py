"""The backstop of the validation queue: prescriptions that sat in ``received`` or ``checking``
longer than they should (a lost publish, a worker killed mid-check, a broker that was down) are
published again. Checks are idempotent, so a duplicate costs a little work and nothing else."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from eprescribe.workflow import State

from ..db import Database
from ..db.models import Prescription, utcnow
from .publisher import CheckQueue

log = logging.getLogger(__name__)
BATCH = 500


async def stuck(db: Database, older_than: dt.timedelta) -> list[uuid.UUID]:
    cutoff = utcnow() - older_than
    async with db.sessions() as session:
        return list(
            await session.scalars(
                select(Prescription.id)
                .where(
                    Prescription.state.in_((State.RECEIVED, State.CHECKING)),
                    Prescription.updated_at < cutoff,
                )
                .order_by(Prescription.updated_at)
                .limit(BATCH)
            )
        )


async def sweep_forever(db: Database, queue: CheckQueue, interval: float, after: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            ids = await stuck(db, dt.timedelta(seconds=after))
        except SQLAlchemyError as exc:
            log.warning("sweep could not read the database (%s)", type(exc).__name__)
            continue
        if ids:
            log.info("sweep: re-queueing %d prescriptions", len(ids))
            queue.submit(ids)
