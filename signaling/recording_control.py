"""A hub process's recordings of its consults, as the live rooms start and stop them.

The recorders (:mod:`signaling.recording`) take a page's offer and write the media; this
module decides when: a recording starts on a participant's ``record_offer`` (the rooms check
consent and authority first), and from then on this process follows the consult's ``hub``
channel itself, so the recording stops when consent goes, wherever the participants' sockets
are. Finished recordings are listed in the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from . import envelopes
from .bus import Bus, Subscription
from .consults import ConsultError
from .ports import ConsultStore
from .recording import Recorders, RecordingError, RecordingSummary

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]


class RecordingControl:
    """The recordings of one hub process (the rooms hold one when recording is set up)."""

    def __init__(self, recorders: Recorders, store: ConsultStore, bus: Bus, spawn: Spawn) -> None:
        self._recorders = recorders
        self._store = store
        self._bus = bus
        self._spawn = spawn
        self._watching: dict[str, Subscription] = {}

    async def start(self, consult_id: str, role: str, sdp: str) -> str:
        """The recorder's answer to ``role``'s offer; :class:`ConsultError` if it refuses."""
        await self._watch(consult_id)
        try:
            return await self._recorders.start(consult_id, role, sdp)
        except RecordingError as refused:
            raise ConsultError(refused.code or "recording_failed", str(refused)) from None
        except Exception:
            log.exception("consult %s: the recorder refused an offer", consult_id)
            raise ConsultError("recording_failed", "The recorder could not take it.") from None

    async def _watch(self, consult_id: str) -> None:
        if consult_id in self._watching:
            return

        def deliver(data: str) -> None:
            envelope = envelopes.decode(data)
            if isinstance(envelope, envelopes.State) and not envelope.recording:
                self._spawn(self.stop(consult_id))

        hub = envelopes.channel(consult_id, "hub")
        self._watching[consult_id] = await self._bus.subscribe(hub, deliver)

    async def stop(self, consult_id: str) -> None:
        watching = self._watching.pop(consult_id, None)
        if watching is not None:
            await watching.cancel()
        summaries = await self._recorders.stop(consult_id)
        if summaries:
            await self._store.add_recordings(consult_id, summaries)

    async def close(self) -> None:
        """Every recording finished and listed (the hub is stopping)."""
        finished: dict[str, list[RecordingSummary]] = {}
        for summary in await self._recorders.close():
            finished.setdefault(summary.consult_id, []).append(summary)
        for consult_id, summaries in finished.items():
            await self._store.add_recordings(consult_id, summaries)
