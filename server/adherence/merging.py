"""A patient's med sync in a profile merge (:class:`server.patients.merges.Mover`): one row a
profile, so it moves like the preferences do. The merged profile's moves to the kept profile
when that one has none (their prescriptions moved with them, which it plans); when both have
one, the kept profile's stays and the merged profile's is kept with it (``med_sync_kept``: a
pharmacist accepts a new plan on the kept profile). An unmerge puts a moved one back, unless a
pharmacist accepted another on the kept profile since (then it is not exact)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from ..patients import merges
from ..patients.models import PatientMerge
from .models import MedSync

NAMES = ("med_sync", "med_sync_kept")


def merge(session: Session, survivor_id: uuid.UUID, merged_id: uuid.UUID) -> dict[str, list[str]]:
    theirs = session.get(MedSync, merged_id, with_for_update=True)
    if theirs is None:
        return {"med_sync": [], "med_sync_kept": []}
    if session.get(MedSync, survivor_id) is not None:
        return {"med_sync": [], "med_sync_kept": [str(merged_id)]}
    theirs.patient_id = survivor_id
    return {"med_sync": [str(merged_id)], "med_sync_kept": []}


def not_exact(session: Session, record: PatientMerge) -> dict[str, int]:
    if not record.moved.get("med_sync"):
        return {}
    row = session.get(MedSync, record.survivor_id)
    if row is None or row.accepted_at >= record.created_at:
        return {"med_sync": 1}
    return {}


def unmerge(session: Session, record: PatientMerge) -> None:
    if not record.moved.get("med_sync"):
        return
    row = session.get(MedSync, record.survivor_id, with_for_update=True)
    assert row is not None  # not_exact said so
    row.patient_id = record.merged_id


def register() -> None:
    """Plug the med sync into profile merges (idempotent)."""
    if not any(mover.names == NAMES for mover in merges.MOVERS):
        merges.MOVERS.append(merges.Mover(NAMES, merge, not_exact, unmerge))
