"""The checks every payments action starts with, each refusal audited in the action's unit of
work (``audit.refusable``)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from .. import audit
from ..errors import NotFound, Problem
from ..patients import contacts


async def own_profile(
    session: AsyncSession,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    patient_id: uuid.UUID,
    event: audit.Event,
) -> None:
    """The profile (locked: one pharmacy's money movements for a patient in one order) must be
    the caller's pharmacy's: else 404, audited as a miss."""
    found = await contacts.own_profile(session, patient_id, pharmacy_id)
    await audit.found(session, actor, event, found, NotFound("No such patient."))


async def refuse_with(
    session: AsyncSession, actor: audit.Actor, event: audit.Event, problem: Problem
) -> None:
    """End the unit of work with ``problem``, audited as refused with its code."""
    detail = {**event.detail, "refused": problem.code}
    await audit.refuse(session, actor, replace(event, outcome="refused", detail=detail), problem)
