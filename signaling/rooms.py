"""Live consults: who is connected, what each may send, and how the two sides reach each other.

A :class:`~signaling.participant.Participant` is one open socket in one consult, as a
pharmacist or the patient. The consult's state is the store's (the database, shared by every
hub process); a change is made under the store's lock and announced on the bus
(:mod:`signaling.envelopes`), so both sides see it wherever their sockets are. What a side may
send, and what each change means, is :mod:`signaling.policy`; what the rooms need from the hub
(the store, the socket) is :mod:`signaling.ports`.

A socket that drops without ``leave`` keeps its seat for a grace period: the participant may
come back with the ``resume`` token of their ``joined`` and carry on where they were. Past the
grace period the patient is taken out of the call and the waiting room (and may wait again
with the same token); the pharmacist must join with an access token again.

A pharmacist's authority on a socket is their sign-in's (the token family the access token of
their ``join`` belongs to), not that one token's: the sign-in is re-checked for all of this
process's pharmacist sockets in one query every ``recheck`` seconds, on every change they ask
for, and on a resume. A socket whose sign-in ended (signed out, revoked, account disabled, no
longer a pharmacist of the consult's pharmacy) is told ``unauthorized`` and closed (4003).

The web does not appear here: the hub's WebSocket handler authenticates a pharmacist's
access token, hands over the decoded messages and provides a
:class:`~signaling.ports.Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from . import consults as rules
from . import envelopes, policy
from . import protocol as p
from .bus import Bus
from .consults import Consult, ConsultError, ConsultState
from .participant import CLOSE_UNAUTHORIZED, Participant
from .policy import LIVE, OVER, PATIENT, PHARMACIST, SIGNED_OUT, other
from .ports import (
    HUB,
    UNOBSERVED,
    Connection,
    ConsultStore,
    IceFor,
    PharmacistId,
    RoomsObserver,
    Seat,
    Step,
    Who,
)
from .recording import Recorders
from .recording_control import RecordingControl

log = logging.getLogger(__name__)

#: how long a dropped socket keeps its seat
GRACE = 30.0
#: how often the sign-ins behind the pharmacist sockets are re-checked (seconds)
RECHECK = 20.0
QUALITY_FLUSH = 1.0
#: how long shutdown waits for background work before cancelling it
CLOSE_WAIT = 5.0


class Rooms:
    """The live consults of one hub process (kept on the app, closed on shutdown)."""

    def __init__(
        self,
        store: ConsultStore,
        bus: Bus,
        ice_for: IceFor,
        recorders: Recorders | None = None,
        grace: float = GRACE,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        recheck: float = RECHECK,
        observer: RoomsObserver = UNOBSERVED,
    ) -> None:
        self.store = store
        self._observer = observer
        self.bus = bus
        self._recordings = (
            RecordingControl(recorders, store, bus, self.spawn) if recorders is not None else None
        )
        self._ice_for = ice_for
        self._grace = grace
        self._clock = clock
        self._recheck = recheck
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[tuple[str, str, str], asyncio.TimerHandle] = {}
        self._quality: list[tuple[str, str, p.Stats]] = []
        #: when :meth:`housekeeping` next looks for dropped seats (time.monotonic)
        self._next_seats = 0.0
        #: when :meth:`housekeeping` next checks the pharmacists' sign-ins
        self._next_check = time.monotonic() + recheck
        self.participants: set[Participant] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` in the background, kept until it finishes and cancelled on close."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("consult background work failed", exc_info=task.exception())

    @property
    def housekeeping_period(self) -> float:
        """How often :meth:`housekeeping` must run: the quality flush, or the sign-in check
        when that is asked for more often."""
        return min(QUALITY_FLUSH, self._recheck)

    async def housekeeping(self) -> None:
        """The periodic work (the hub runs it as a supervised loop, which retries it after an
        error): the quality samples, written in batches; now and then the seats whose grace
        ran out anywhere (a process that died, a restart); and the pharmacists' sign-ins, from
        one period after start (no sockets before)."""
        await self._flush_quality()
        now = time.monotonic()
        if now >= self._next_seats:
            self._next_seats = now + max(QUALITY_FLUSH, min(self._grace / 2, 15.0))
            await self._release_dropped()
        if now >= self._next_check:
            self._next_check = now + self._recheck
            await self._check_sign_ins()

    async def _flush_quality(self) -> None:
        samples, self._quality = self._quality, []
        if samples:
            await self.store.add_quality(samples)

    async def _release_dropped(self) -> None:
        cutoff = self._clock() - dt.timedelta(seconds=self._grace)
        for consult_id, role, conn_id in await self.store.dropped_seats(cutoff):
            await self._grace_over(consult_id, role, conn_id)

    async def _check_sign_ins(self) -> None:
        """Every pharmacist socket of this process whose sign-in no longer authorises it is
        closed: one query for all of them, nothing kept per socket but the sign-in's ID.
        (While the database is away, sockets stay as they are: no change can be made then.)"""
        held = {
            participant: grant
            for participant in self.participants
            if participant.gone is None and (grant := _grant(participant))
        }
        if not held:
            return
        live = await self.store.authorised(set(held.values()))
        for participant, grant in held.items():
            if grant not in live:
                self._signed_out(participant)

    def _signed_out(self, participant: Participant) -> None:
        """Tell the socket its pharmacist's authority has ended, and close it (4003); the seat
        drops as a lost socket's does, and only a new sign-in gets back in."""
        if participant.gone == "unauthorized":
            return
        participant.gone = participant.gone or "unauthorized"
        participant.send(p.Error(code="unauthorized", message=SIGNED_OUT))
        self.spawn(participant.close(CLOSE_UNAUTHORIZED, "unauthorized", "unauthorized"))

    async def _authorised(self, who: Participant, action: str) -> bool:
        """Whether a change a pharmacist asks for may go ahead: their sign-in is checked on
        each (changes are rare), so a revocation stops them before the next sweep does. A
        refusal is audited as the action refused, and ends the socket."""
        grant = _grant(who)
        if grant is None or (who.gone != "unauthorized" and await self._stands(grant)):
            return True
        with contextlib.suppress(ConsultError):
            await self.store.change(who.consult_id, who.who, action, policy.refuse_signed_out)
        self._signed_out(who)
        return False

    async def _stands(self, grant: tuple[str, str]) -> bool:
        """Whether a (consult, sign-in) still authorises its pharmacist."""
        return grant in await self.store.authorised({grant})

    # -- joining -----------------------------------------------------------------------------

    async def enter(
        self,
        join: p.Join,
        connection: Connection,
        pharmacist: PharmacistId | None = None,
        ip: str | None = None,
    ) -> Participant:
        """Seat a new socket per its ``join``; :class:`ConsultError` if it may not."""
        now = self._clock()
        if join.access_token is not None:
            if pharmacist is None or join.consult_id is None:
                raise ConsultError("unauthorized", "The access token is not valid.")
            consult_id, role = join.consult_id, PHARMACIST
            who = Who(PHARMACIST, pharmacist.user_id, pharmacist.ip, pharmacist.sign_in)
            action, step = "consult.connect", policy.owned_by(pharmacist.user_id)
        elif join.invite is not None:
            found = await self.store.find_by_invite(join.invite)
            if found is None:
                raise ConsultError("invite_invalid", "This invite link is not valid.")
            consult_id, role, who = found, PATIENT, Who(PATIENT, ip=ip)
            consent = rules.Consent(now, join.consent_version or "")
            action, step = "consult.join", policy.join_waiting_room(join.invite, consent, now)
        else:
            assert join.resume is not None
            consult_id, role, who, step = await self._resume(join.resume, ip, now)
            action = "consult.rejoin"
        participant = Participant(self, consult_id, role, connection, who)
        try:
            await self._seat(participant, action, step, join.resume)
        except BaseException as failed:
            await self.closed(participant)  # a half-made seat is a dropped one
            if isinstance(failed, ConsultError) and failed.code == "invite_expired":
                with contextlib.suppress(ConsultError):
                    await self._change(consult_id, HUB, "consult.expire", policy.expire(now))
            raise
        return participant

    async def _resume(
        self, token: str, ip: str | None, now: dt.datetime
    ) -> tuple[str, str, Who, Step]:
        found = await self.store.find_by_resume(token)
        if found is None:
            raise ConsultError("resume_invalid", "This session cannot be resumed.")
        consult_id, role, seat, pharmacist = found
        if role == PHARMACIST:
            # only a dropped socket, within the grace period, of a sign-in that still stands
            if not (
                self._within_grace(seat, allow_connected=False)
                and seat.sign_in
                and await self._stands((consult_id, seat.sign_in))
            ):
                raise ConsultError("resume_expired", "Join again with your sign-in.")
            return consult_id, role, Who(role, pharmacist, ip, seat.sign_in), policy.still_open
        within = self._within_grace(seat, allow_connected=True)

        def back(consult: Consult) -> Consult:
            policy.still_open(consult)
            if within and consult.state is not ConsultState.SCHEDULED:
                return consult  # where they were
            return rules.rejoin_waiting_room(rules.patient_gone(consult, now), now)

        return consult_id, role, Who(PATIENT, ip=ip), back

    def _within_grace(self, seat: Seat, *, allow_connected: bool) -> bool:
        if seat.released_at is not None:
            return False
        if seat.disconnected_at is None:
            return allow_connected
        return (self._clock() - seat.disconnected_at).total_seconds() <= self._grace

    async def _seat(
        self, participant: Participant, action: str, step: Step, used: str | None
    ) -> None:
        consult_id, role = participant.consult_id, participant.role
        self._cancel_timer(consult_id, role)
        await participant.subscribe(self.bus)  # first: no announcement is missed after this
        if participant not in self.participants:
            self.participants.add(participant)
            self._observer.seated(role, 1)
        resume = secrets.token_urlsafe(32)
        consult, participant.generation = await self.store.seat(
            consult_id,
            role,
            participant.conn_id,
            resume,
            participant.who,
            used,
            action,
            step,
        )
        participant.update(consult.revision, consult.state, consult.recording_allowed)
        if action != "consult.connect":
            await self.announce(consult)  # the other side learns the new state at once
        kick = envelopes.Kick(participant.generation)
        await envelopes.publish(self.bus, consult_id, role, kick)
        participant.send(p.Joined(consult_id, role, resume, consult.state.value))
        if consult.state is ConsultState.WAITING and role == PATIENT:
            participant.send(p.Waiting())
        if consult.state in LIVE:
            participant.send(p.Admitted(ice_servers=self._ice_for(consult_id, role)))
        await self.hello(participant, reply=False)

    async def hello(self, participant: Participant, *, reply: bool) -> None:
        hello = envelopes.Hello(participant.role, reply)
        await envelopes.publish(self.bus, participant.consult_id, other(participant.role), hello)

    # -- messages ----------------------------------------------------------------------------

    async def handle(self, participant: Participant, message: p.Message) -> bool:
        """One message from a seated socket; a refusal goes back to it as ``error`` (and
        False is returned, so the socket's handler can count it)."""
        try:
            await self._handle(participant, message)
        except ConsultError as refused:
            self._observer.signaling_message(message.type, False)
            participant.send(p.Error(code=refused.code, message=str(refused)[:500]))
            return False
        self._observer.signaling_message(message.type, True)
        return True

    async def _handle(self, who: Participant, message: p.Message) -> None:
        policy.check(who.role, who.state, message)
        if isinstance(message, p.Ping):
            who.send(p.Pong())
        elif isinstance(message, policy.RELAYED):
            await self._relay(who, message)
        elif isinstance(message, p.Stats):
            await self._stats(who, message)
        elif isinstance(message, p.RecordOffer):
            await self._record(who, message)
        elif isinstance(message, p.Leave):
            await self._leave(who)
        else:
            await self._act(who, message)

    async def _relay(self, who: Participant, message: p.Message) -> None:
        await self._tell(who.consult_id, other(who.role), message)

    async def _act(self, who: Participant, message: p.Message) -> None:
        """The messages that change the consult: admit, media, recording consent, end."""
        now = self._clock()
        action, step = policy.step_for(message, who.role, who.who.user_id or "", now)
        if not await self._authorised(who, action):
            return
        changed = await self._change(who.consult_id, who.who, action, step)
        assert changed is not None
        if isinstance(message, p.Admit):  # only a waiting patient can be admitted
            patient = p.Admitted(ice_servers=self._ice_for(who.consult_id, PATIENT))
            await self._tell(who.consult_id, PATIENT, patient)
            who.send(p.Admitted(ice_servers=self._ice_for(who.consult_id, PHARMACIST)))
        elif isinstance(message, p.RecordingConsent):  # so the other page can ask its user
            await self._relay(who, message)

    async def _stats(self, who: Participant, stats: p.Stats) -> None:
        if not who.stats_due():
            return  # a page reporting too often: keep the store and the pharmacist calm
        self._quality.append((who.consult_id, who.role, stats))
        if who.role == PATIENT:
            quality = p.Quality(
                PATIENT, stats.bitrate_kbps, stats.fps, stats.packet_loss, stats.rtt_ms
            )
            await self._tell(who.consult_id, PHARMACIST, quality)

    async def _tell(self, consult_id: str, role: str, message: p.Message) -> None:
        """``message`` to ``role``'s socket in the consult, on whichever process it is."""
        await envelopes.publish(self.bus, consult_id, role, envelopes.Relay(p.encode(message)))

    async def _record(self, who: Participant, offer: p.RecordOffer) -> None:
        if self._recordings is None:
            raise ConsultError("recording_unavailable", "Recording is not set up on this hub.")
        consult = await self.store.load(who.consult_id)  # the database's word, not the cache's
        if consult is None or not consult.recording_allowed:
            raise ConsultError("wrong_state", "Recording needs both parties' consent.")
        if not await self._authorised(who, "consult.recording_start"):
            return
        answer = await self._recordings.start(who.consult_id, who.role, offer.sdp)
        await self._change(who.consult_id, who.who, "consult.recording_start", policy.unchanged)
        who.send(p.RecordAnswer(sdp=answer))

    async def _leave(self, who: Participant) -> None:
        who.gone = "left"
        now = self._clock()
        if who.role == PATIENT and who.state not in OVER:
            await self._change(
                who.consult_id, who.who, "consult.leave", lambda c: rules.patient_gone(c, now)
            )
        # before the socket closes, so a page that saw it close cannot resume a pharmacist
        await self.store.unseat(
            who.consult_id, who.role, who.conn_id, now, revoke=who.role == PHARMACIST
        )
        await who.close(1000, "left", "left")

    async def _change(
        self, consult_id: str, who: Who, action: str, step: Step, guard: str | None = None
    ) -> Consult | None:
        """Change the consult in the store, then tell both sides (wherever they are)."""
        changed = await self.store.change(consult_id, who, action, step, guard=guard)
        if changed is not None:
            await self.announce(changed)
        return changed

    async def announce(self, consult: Consult) -> None:
        """Tell both sides and any recorder of ``consult`` what it is now. Committed already:
        a bus that fails here is logged, and the sockets learn the state when they rejoin."""
        state = envelopes.State(consult.revision, consult.state, consult.recording_allowed)
        try:
            for role in (PHARMACIST, PATIENT, "hub"):
                await envelopes.publish(self.bus, consult.id, role, state)
        except Exception:
            log.exception("consult %s: a change could not be announced", consult.id)

    # -- leaving -----------------------------------------------------------------------------

    async def closed(self, participant: Participant) -> None:
        """The socket is gone: free the seat now if it left, else after the grace period.

        This runs to its end even if the caller is cancelled (aiohttp cancels a WebSocket
        handler whose client went away): the seat must be released either way."""
        await asyncio.shield(self.spawn(self._release(participant)))

    async def _release(self, participant: Participant) -> None:
        participant.closed = True
        if participant in self.participants:
            self.participants.discard(participant)
            self._observer.seated(participant.role, -1)
        await participant.unsubscribe()
        if participant.gone in ("replaced", "restart") or participant.generation == 0:
            return  # another socket holds the seat, or the restart already let it go
        consult_id, role, conn_id = participant.consult_id, participant.role, participant.conn_id
        await envelopes.publish(self.bus, consult_id, other(role), envelopes.Bye(role))
        if participant.gone == "over":
            return
        left = participant.gone == "left"
        if not left:  # (a departure let its seat go already)
            await self.store.unseat(consult_id, role, conn_id, self._clock())
        if participant.state is ConsultState.IN_CALL:  # recording stops; asked again later
            await self._change(
                consult_id, HUB, "consult.recording_consent_cleared", rules.forget_recording_consent
            )
        if not left:
            loop = asyncio.get_running_loop()
            key = (consult_id, role, conn_id)
            self._timers[key] = loop.call_later(self._grace, self._grace_due, key)

    def _cancel_timer(self, consult_id: str, role: str) -> None:
        for key in [k for k in self._timers if k[:2] == (consult_id, role)]:
            self._timers.pop(key).cancel()

    def _grace_due(self, key: tuple[str, str, str]) -> None:
        self._timers.pop(key, None)
        self.spawn(self._grace_over(*key))

    async def _grace_over(self, consult_id: str, role: str, conn_id: str) -> None:
        """The side dropped ``grace`` seconds ago and is not back: the patient leaves the call
        and the waiting room, a pharmacist's call is no longer in progress. Once per drop,
        whichever process gets there first (the guard)."""
        now = self._clock()

        def gone(consult: Consult) -> Consult:
            if consult.state in OVER:
                return consult
            if role == PATIENT:
                return rules.patient_gone(consult, now)
            if consult.state is ConsultState.IN_CALL:
                return rules.media_lost(consult, now)
            return consult

        await self._change(consult_id, HUB, "consult.seat_expired", gone, guard=conn_id)

    async def shutdown(self) -> None:
        """The hub is stopping (before aiohttp waits for handlers): every socket is told
        (1001) and its seat marked dropped now, so the grace period runs from here and any
        hub process may end it (the sweep)."""
        now = self._clock()
        for participant in list(self.participants):
            participant.gone = "restart"
            with contextlib.suppress(Exception):
                await self.store.unseat(
                    participant.consult_id, participant.role, participant.conn_id, now
                )
                bye = envelopes.Bye(participant.role)
                await envelopes.publish(
                    self.bus, participant.consult_id, other(participant.role), bye
                )
            with contextlib.suppress(Exception):
                await participant.connection.close(1001, "the hub is restarting")

    async def close(self) -> None:
        """After the sockets are gone: recordings finished and listed, samples written,
        background work cancelled."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._recordings is not None:
            await self._recordings.close()
        if self._tasks:  # what is under way (saving a recording, a last announcement) ends
            _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush_quality()


def _grant(participant: Participant) -> tuple[str, str] | None:
    """What a pharmacist's socket holds its authority by: (consult, sign-in)."""
    sign_in = participant.who.sign_in
    return (participant.consult_id, sign_in) if sign_in else None
