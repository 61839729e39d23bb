"""Delivering outbound messages, in a worker: claim, POST, conclude.

One attempt is three steps, none of them holding a lock while the receivers are asked, over a
batch (the task's messages, and others due now, up to :data:`BATCH`):

1. claim (a short unit of work): each message, if due and first in its prescription's line, is
   ``sending`` until its claim lapses (the batch's POSTs' timeouts and a margin);
2. one HTTP POST of each message's stored bytes (``application/xml``, the client's bearer
   token) to its client's registered endpoint, within the configured timeout,
   :data:`PARALLEL` at a time, over connections kept open between attempts;
3. conclude (a short unit of work): each answer read (:mod:`.replies`), each state moved, one
   audit append for the batch.

A worker killed between 1 and 3 leaves the message ``sending``: once its claim lapses the sweep
(:mod:`.sweep`) queues it again, and the next attempt sends the same bytes with the same
MessageID. A retry is published with a countdown; the sweep is the backstop of that too.
"""

from __future__ import annotations

import logging
import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from cryptography.exceptions import InvalidTag
from sqlalchemy.orm import Session, sessionmaker
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ..auth.credentials import SecretBox
from ..db import sync_engine
from ..db.models import utcnow
from ..outgoing import Outgoing
from ..settings import Settings
from . import endpoint_context, store
from .replies import read_answer
from .store import Attempt, Claimed, Concluded

log = logging.getLogger(__name__)
#: how long a claim outlives the attempt's timeout (the POST, then the conclusion)
CLAIM_MARGIN = 30.0
#: the most of a reply the hub reads (a SCRIPT Status or Error is a few kilobytes)
REPLY_MAX = 1024 * 1024
CONTENT_TYPE = "application/xml; charset=utf-8"
#: the most messages one attempt takes: its task's, then others that are due (a backlog is
#: drained in batches, two transactions and one audit append each)
BATCH = 32
#: POSTs of a batch in flight at once (one slow endpoint does not hold the others back)
PARALLEL = 8


@dataclass(frozen=True, slots=True)
class Next:
    """A message to publish again: now, or after ``countdown`` seconds."""

    id: uuid.UUID
    countdown: float | None = None


class Deliverer:
    """Delivers outbound messages on a blocking engine (a worker process's)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._box: SecretBox | None = None
        self._pool: ThreadPoolExecutor | None = None
        # connections to each endpoint kept open, as many as the POSTs in flight
        self._http = Outgoing(settings.outbox_timeout, PARALLEL)

    @classmethod
    def from_settings(cls, settings: Settings) -> Deliverer:
        engine = sync_engine(settings.sync_database_url)
        return cls(sessionmaker(engine, expire_on_commit=False), settings)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._http.clear()
        engine = self._sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def deliver_many(self, ids: list[uuid.UUID]) -> list[Next]:
        """One attempt at each of ``ids`` that is due (the others: nothing, idempotent), and
        at other messages due now, up to :data:`BATCH` in all; what to publish next
        (retries, the next in line). One unit of work claims them, their POSTs run
        :data:`PARALLEL` at a time, one unit of work concludes them: a backlog costs two
        transactions and one audit append a batch, not a message. The task of a message
        taken with another's finds it finished and does nothing."""
        settings = self._settings
        wanted = list(dict.fromkeys(ids))
        room = max(BATCH, len(wanted))
        # the claim lasts while the batch's POSTs may each take their whole timeouts (to
        # connect, then for the answer)
        lease = 2 * settings.outbox_timeout * math.ceil(room / PARALLEL) + CLAIM_MARGIN
        bound = settings.outbox_dead_after
        backoff = (settings.outbox_retry_first, settings.outbox_retry_max)
        # one connection for both units of work (taken from the pool, and so pinged, once),
        # outside any transaction while the receivers are asked
        with self._sessions.kw["bind"].connect() as connection:
            with self._sessions(bind=connection) as session, session.begin():
                claimed = store.claim_many(session, wanted, utcnow(), lease, bound, room)
            if not claimed:
                return []
            attempts = list(zip(claimed, self._attempts(claimed), strict=True))
            with self._sessions(bind=connection) as session, session.begin():
                concluded = store.conclude_many(session, attempts, utcnow(), backoff)
        follow: list[Next] = []
        for c, outcome in zip(claimed, concluded, strict=True):
            state = outcome.state if outcome else "superseded"
            log.info("outbound %s attempt %d: %s", c.id, c.attempt, state)
            follow += _next(c.id, outcome)
        return follow

    def _attempts(self, claimed: list[Claimed]) -> list[Attempt]:
        if len(claimed) == 1:
            return [self._attempt(claimed[0])]
        if any(c.sealed_token for c in claimed):
            self._secrets()  # loaded once, before the threads ask for it
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="outbound")
        return list(self._pool.map(self._attempt, claimed))

    def deliver(self, message_id: uuid.UUID) -> list[Next]:
        """One attempt at ``message_id`` if it is due (else nothing: idempotent)."""
        return self.deliver_many([message_id])

    def _attempt(self, claimed: Claimed) -> Attempt:
        if not claimed.payload:
            return Attempt(False, "nothing to send (the message was never built)", permanent=True)
        if claimed.endpoint is None:
            # an operator may register one: tried again until the bound
            return Attempt(False, "the client has no endpoint registered")
        headers = {"Content-Type": CONTENT_TYPE, "Accept": "application/xml"}
        if claimed.sealed_token is not None:
            try:
                token = self._secrets().open(
                    claimed.sealed_token, endpoint_context(claimed.client_id)
                )
            except (InvalidTag, ValueError):
                # sealed with another key (or another client's): only an operator fixes it
                return Attempt(False, "the endpoint's token cannot be opened", permanent=True)
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._post(claimed, headers)
        except Exception as exc:
            # whatever else a receiver's answer breaks (a malformed status line, a truncated
            # body): a failed attempt of this message, never the batch's conclusion lost
            return Attempt(False, f"the attempt failed ({type(exc).__name__})")

    def _post(self, claimed: Claimed, headers: dict[str, str]) -> Attempt:
        assert claimed.endpoint is not None
        if urlsplit(claimed.endpoint).scheme not in ("http", "https"):
            return Attempt(False, "the endpoint is not an http(s) URL", permanent=True)
        try:
            response = self._http.post(claimed.endpoint, claimed.payload, headers)
        except (NewConnectionError, NameResolutionError) as exc:
            return Attempt(False, f"could not connect ({type(exc).__name__})")
        except urllib3.exceptions.TimeoutError:
            return Attempt(False, "timed out")
        try:
            body = response.read(REPLY_MAX + 1)
        except urllib3.exceptions.TimeoutError:
            response.close()
            return Attempt(False, "timed out")
        if len(body) > REPLY_MAX:
            response.close()  # the rest unread: the connection is not used again
        else:
            response.release_conn()
        return read_answer(response.status, body[:REPLY_MAX], claimed.message_id)

    def _secrets(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.load(self._settings.keys_dir)
        return self._box


def _next(message_id: uuid.UUID, concluded: Concluded | None) -> list[Next]:
    if concluded is None:
        return []
    if concluded.retry_in is not None:
        return [Next(message_id, concluded.retry_in)]
    return [Next(concluded.next_id)] if concluded.next_id is not None else []
