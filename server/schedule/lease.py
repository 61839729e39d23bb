"""The lease on a periodic job: the one statement that lets one hub process (a hub's
in-process loop, or the worker running the beat's task) run it, and no other until it is
done and its next run is due.

A lease row (``job_leases``) says who holds the job until when. :func:`take` takes it when it
has lapsed, in one upsert that both PostgreSQL and SQLite serialise
on the row: of two processes that try at once, one gets the row back and the other nothing.
:func:`release` keeps it until the next run is due, so the job runs once an interval whoever
runs it, and a holder that dies mid-run loses it when its lease lapses.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import JobLease


def take(session: Session, name: str, holder: str, now: dt.datetime, seconds: float) -> bool:
    """Take job ``name`` for ``holder`` for ``seconds`` unless its lease runs yet (its
    holder's or anyone's): whether taken."""
    make = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    until = now + dt.timedelta(seconds=seconds)
    statement = make(JobLease).values(name=name, holder=holder, expires_at=until)
    upsert = statement.on_conflict_do_update(
        index_elements=[JobLease.name],
        set_={"holder": holder, "expires_at": until},
        where=JobLease.expires_at <= now,
    ).returning(JobLease.name)
    return session.execute(upsert).first() is not None


def release(
    session: Session, name: str, holder: str, now: dt.datetime, next_run: dt.datetime
) -> None:
    """The run is done: nobody takes the job again before ``next_run``."""
    session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=next_run, last_run_at=now)
    )
