"""The transactional outbox: every SCRIPT message the hub sends for a pharmacy, delivered
reliably to the prescriber system's registered endpoint.

A feature's store writes a message with :func:`~.store.enqueue` in the unit of work of the
change that causes it (a pharmacist's clarification: an RxChangeRequest). After the commit the
hub publishes its ID (:data:`DELIVER`); a worker delivers it (:mod:`.delivery`): one HTTP POST
of the stored bytes, the synchronous SCRIPT reply read with the hub's own parser.

States (``OutboundMessage.state``):

- ``pending``: written, not tried yet;
- ``sending``: a worker holds it until ``next_attempt_at`` (a worker killed mid-delivery lets
  the claim lapse and the sweep queues it again);
- ``retrying``: an attempt failed for a reason that may pass; tried again at
  ``next_attempt_at`` (exponential backoff with jitter);
- ``delivered``: the receiver answered Status 000/010 or Verify (or Error 900/220: it already
  has this MessageID);
- ``dead``: a permanent failure, or failing for longer than the configured bound, or refused
  by the receiver after it took it (an Error posted later to the intake); visible to
  operators (``telepharm outbox list``), who may send it again (``telepharm outbox retry``).

A prescription's messages are delivered in the order they were written: one waits while an
earlier one is neither delivered nor dead. Every attempt sends the same bytes, with the same
MessageID, so the receiver can de-duplicate. A Status, Error or Verify the receiver posts
later to the intake moves the message it relates to (:func:`.store.answered_later`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from aiohttp import web

#: the Celery task that delivers outbound messages (its argument: a list of message IDs)
DELIVER_TASK = "telepharm.deliver_outbound"
#: the broker queue of deliveries (workers consume it beside the checks)
QUEUE = "telepharm.outbound"

#: publishes outbound message IDs for delivery, after the commit that wrote them
Deliver = Callable[[Sequence[uuid.UUID]], None]
DELIVER: web.AppKey[Deliver] = web.AppKey("deliver")


def endpoint_context(client_id: str) -> str:
    """The sealing context of a client's endpoint token (``SecretBox``): a token sealed for
    one client does not open for another."""
    return f"endpoint-token:{client_id}"
