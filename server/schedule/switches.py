"""Each pharmacy's switch of an event kind that notifies (no row: on): read by every trigger
(:mod:`server.notifications.triggers`), written by the pharmacy's pharmacists
(:mod:`.http`)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from eprescribe.contacts import CONSENT_KINDS
from eprescribe.notifications import EventKind

from .models import NoticeSwitch

#: the kinds a pharmacy may switch: those a patient may (a sign-in code and the keyword
#: answers always go)
SWITCHABLE = CONSENT_KINDS


#: a unit of work's switches read so far (``Session.info``): a job writing thousands of
#: notices reads each pharmacy's once
_READ = "telepharm.notice_switches"


def enabled(session: Session, pharmacy_id: uuid.UUID, kind: EventKind | str) -> bool:
    """Whether the pharmacy sends ``kind`` notifications (read once a unit of work)."""
    read: dict[uuid.UUID, dict[str, bool]] = session.info.setdefault(_READ, {})
    if pharmacy_id not in read:
        read[pharmacy_id] = all_of(session, pharmacy_id)
    return read[pharmacy_id].get(EventKind(kind).value, True)


def all_of(session: Session, pharmacy_id: uuid.UUID) -> dict[str, bool]:
    """Every switchable kind, on or off, for the pharmacy."""
    rows: dict[str, bool] = dict(
        session.execute(
            select(NoticeSwitch.kind, NoticeSwitch.enabled).where(
                NoticeSwitch.pharmacy_id == pharmacy_id
            )
        ).all()
    )
    return {kind.value: rows.get(kind.value, True) for kind in SWITCHABLE}


def put(
    session: Session, pharmacy_id: uuid.UUID, kind: EventKind, on: bool, now: dt.datetime
) -> None:
    """Switch ``kind`` on or off for the pharmacy (one upsert)."""
    make = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = make(NoticeSwitch).values(
        pharmacy_id=pharmacy_id, kind=kind.value, enabled=on, updated_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[NoticeSwitch.pharmacy_id, NoticeSwitch.kind],
            set_={"enabled": on, "updated_at": now},
        )
    )
    session.info.pop(_READ, None)
