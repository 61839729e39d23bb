"""Failed requests at the OAuth endpoints and refused sign-ins, audited as summaries.

Anybody can send failing token, revocation or introspection requests, as fast as they like:
the caller has not proved who it is, or asks for what it may not have. An audit entry for each
would put every one of them in line for the audit chain's head, the lock the intake of every
prescription takes too, so a flood of them slowed intake tenfold. They are counted in memory
instead, per endpoint, claimed client, address, grant type and error, and one entry per such
group is appended every minute and when the hub stops, with the count and the first and last
time: still on the trail, at a cost the caller does not control. The same goes for revoking a
token the hub does not know (answered 200, as RFC 7009 says, but nothing happened) and for
sign-in attempts the throttle refused unheard. Requests that issue or revoke something, and
sign-in attempts whose password or code was checked, are audited one by one as before. The
groups are bounded: past :data:`MAX_GROUPS`, new ones are counted together under the actor
``*`` (``client:*``, ``anonymous:*``) of their endpoint and error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import audit
from ..background import BACKGROUND
from ..db import DATABASE, Database
from ..db.models import utcnow

log = logging.getLogger(__name__)

INTERVAL = 60.0
MAX_GROUPS = 1000
#: endpoint (audit action and resource type), outcome, actor, address, detail
_Key = tuple[str, str, str, str, str | None, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class _Group:
    pharmacy_id: Any
    count: int
    first: dt.datetime
    last: dt.datetime


class FailureTally:
    """Failures (and void revocations) counted since the last summary."""

    def __init__(self) -> None:
        self._groups: dict[_Key, _Group] = {}

    def note(self, actor: audit.Actor, event: audit.Event) -> None:
        """Count an event that :func:`audit.record` would have recorded on its own."""
        now = utcnow()
        items = tuple(sorted((k, str(v)) for k, v in event.detail.items() if v is not None))
        kind = (event.action, event.resource_type, event.outcome)
        key: _Key = (*kind, str(actor), actor.ip, items)
        if key not in self._groups and len(self._groups) >= MAX_GROUPS:
            key = (*kind, f"{actor.kind}:*", None, tuple(i for i in items if i[0] == "error"))
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = _Group(actor.pharmacy_id, 1, now, now)
        else:
            group.count += 1
            group.last = now

    async def flush(self, db: Database) -> None:
        """Append one summary entry per group; on failure the counts are kept for the next."""
        groups, self._groups = self._groups, {}
        if not groups:
            return
        rows = [_entry(key, group) for key, group in groups.items()]
        try:
            async with db.transaction() as session:
                await session.run_sync(audit.append, rows)
        except Exception:
            for key, group in groups.items():
                self._merge(key, group)
            raise

    def _merge(self, key: _Key, group: _Group) -> None:
        kept = self._groups.get(key)
        if kept is None:
            self._groups[key] = group
        else:
            kept.count += group.count
            kept.first = min(kept.first, group.first)


def _entry(key: _Key, group: _Group) -> dict[str, Any]:
    action, resource_type, outcome, actor, ip, items = key
    kind, _, actor_id = actor.partition(":")
    detail = {
        **dict(items),
        "count": group.count,
        "first": group.first.isoformat(timespec="seconds"),
        "last": group.last.isoformat(timespec="seconds"),
    }
    event = audit.Event(action, resource_type, outcome=outcome, detail=detail)
    return audit.values(audit.Actor(kind, actor_id, group.pharmacy_id, ip), event, group.last)


FAILURES: web.AppKey[FailureTally] = web.AppKey("oauth_failures")


async def failures_ctx(app: web.Application) -> AsyncIterator[None]:
    """The tally of this process, summarised every :data:`INTERVAL` (a supervised loop: a
    database outage does not end the summaries, the counts wait for the next try) and at
    shutdown."""
    tally = app[FAILURES] = FailureTally()
    db = app[DATABASE]
    async with app[BACKGROUND].every("oauth_failure_summary", INTERVAL, lambda: tally.flush(db)):
        yield
    try:
        await tally.flush(db)
    except Exception:
        log.exception("the last summary of failed OAuth requests could not be written")
