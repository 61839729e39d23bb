"""The occasions a notice was decided for (``notice_occasions``): claimed in one statement
(``INSERT … ON CONFLICT DO NOTHING RETURNING``), so whoever claims an occasion first writes its
notice and every other unit of work (a job run twice, on two processes, a refusal reported both
by the provider's answer and by its webhook) writes nothing. A concurrent claim waits for the
first one's commit on PostgreSQL, then finds the row taken."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from eprescribe.notifications import EventKind

from .models import NoticeOccasion

#: an occasion: its kind, what it is about, and the pharmacy it is of
Claim = tuple[EventKind, uuid.UUID, uuid.UUID]


def claim(
    session: Session, occasions: Sequence[Claim], now: dt.datetime
) -> set[tuple[str, uuid.UUID]]:
    """The occasions (kind, subject) this unit of work takes: those no other has."""
    if not occasions:
        return set()
    make = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [
        {"kind": kind.value, "subject_id": subject, "pharmacy_id": pharmacy, "created_at": now}
        for kind, subject, pharmacy in occasions
    ]
    statement = (
        make(NoticeOccasion)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[NoticeOccasion.kind, NoticeOccasion.subject_id])
        .returning(NoticeOccasion.kind, NoticeOccasion.subject_id)
    )
    return {(kind, subject) for kind, subject in session.execute(statement)}
