"""What the live rooms need from outside :mod:`signaling`, and the values they pass it.

The hub's database is the :class:`ConsultStore` (``server/consults/store.py``), a socket is a
:class:`Connection` (``server/consults/ws.py`` over aiohttp); :class:`Who` acts, a
:class:`Seat` is a side's place, a :class:`PharmacistId` is a verified access token's owner.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from . import protocol as p
from .consults import Consult
from .recording import RecordingSummary

Step = Callable[[Consult], Consult]
IceFor = Callable[[str, str], tuple[dict[str, Any], ...]]


@dataclass(frozen=True, slots=True)
class Who:
    """Who acts, for the store's audit trail: a role, the pharmacist's user ID, an address;
    and for a pharmacist, the sign-in (token family) their authority rests on."""

    role: str
    user_id: str | None = None
    ip: str | None = None
    sign_in: str | None = None


HUB = Who("hub")


@dataclass(frozen=True, slots=True)
class Seat:
    """A side's place in a consult: its current socket, when that socket dropped, and when
    the grace period of that drop ran out."""

    conn_id: str
    disconnected_at: dt.datetime | None
    released_at: dt.datetime | None = None
    #: a pharmacist's seat: the sign-in it was taken under
    sign_in: str | None = None


@dataclass(frozen=True, slots=True)
class PharmacistId:
    """A pharmacist whose access token the hub has verified, and the sign-in (token family)
    it belongs to."""

    user_id: str
    sign_in: str
    ip: str | None = None


class RoomsObserver(Protocol):
    """What the rooms report as they work, for the hub's metrics (the hub injects one: the
    rooms know nothing of how it is counted)."""

    def signaling_message(self, kind: str, accepted: bool) -> None:
        """A message from a seated socket, of ``kind`` (its ``type``), done or refused."""

    def seated(self, role: str, change: int) -> None:
        """A socket of ``role`` took its seat (+1) or let it go (-1) on this process."""


class _Unobserved:
    def signaling_message(self, kind: str, accepted: bool) -> None:
        pass

    def seated(self, role: str, change: int) -> None:
        pass


#: the rooms' observer when the hub gives none
UNOBSERVED: RoomsObserver = _Unobserved()


class Connection(Protocol):
    """The socket as the rooms see it."""

    async def send(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class ConsultStore(Protocol):
    """Where consults live (the hub's database); every change and seat is audited there."""

    async def find_by_invite(self, token: str) -> str | None: ...

    async def find_by_resume(self, token: str) -> tuple[str, str, Seat, str] | None:
        """The consult, side and seat of a resume token (the current one, or the one before
        it until the current one is used), and the consult's pharmacist."""
        ...

    async def load(self, consult_id: str) -> Consult | None: ...

    async def change(
        self, consult_id: str, who: Who, action: str, step: Step, *, guard: str | None = None
    ) -> Consult | None:
        """Apply ``step`` under the consult's lock and store the result. With ``guard`` (a
        connection ID), only if that connection still holds its seat, dropped and not yet
        released, and then release it; None when the guard does not hold. A
        :class:`ConsultError` from the step is recorded as refused and raised."""
        ...

    async def seat(
        self,
        consult_id: str,
        role: str,
        conn_id: str,
        resume: str,
        who: Who,
        used: str | None,
        action: str,
        step: Step,
    ) -> tuple[Consult, int]:
        """In one transaction under the consult's lock: apply ``step`` (which may refuse the
        join with a :class:`ConsultError`, recorded as refused), then ``conn_id`` takes the
        side's seat with the new token ``resume`` (``used``, the token it resumed with, stays
        good until ``resume`` is used); the consult as it is now, and the seat's generation.
        One audit entry, ``action``."""
        ...

    async def unseat(
        self, consult_id: str, role: str, conn_id: str, at: dt.datetime, *, revoke: bool = False
    ) -> None:
        """The connection dropped or left (only if it still holds the seat); ``revoke`` ends
        its resume token."""
        ...

    async def dropped_seats(self, before: dt.datetime) -> list[tuple[str, str, str]]:
        """(consult, role, connection) of seats dropped before ``before``, not yet released."""
        ...

    async def authorised(self, held: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of (consult, sign-in) pairs, those whose sign-in still lets its pharmacist act on
        the consult: the sign-in standing (not revoked, not past its lifetime, the account
        active), and its user the consult's pharmacist, still a pharmacist of its pharmacy."""
        ...

    async def add_quality(self, samples: list[tuple[str, str, p.Stats]]) -> None: ...

    async def add_recordings(self, consult_id: str, summaries: list[RecordingSummary]) -> None: ...
