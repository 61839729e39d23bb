"""Consults in the database: the values of :mod:`signaling.consults` stored as rows, and the
store the live rooms (:mod:`signaling.rooms`) change them through.

Every change happens under the consult row's lock (``FOR UPDATE`` on PostgreSQL; SQLite's
transactions are ``BEGIN IMMEDIATE``), so two hub processes serving the two sides never
interleave, and is audited in the same transaction, refusals included. Invites and resume
tokens are kept only as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from signaling import consults as rules
from signaling import protocol
from signaling.ports import HUB, Seat, Step, Who
from signaling.recording import RecordingSummary

from .. import audit
from ..auth.models import TokenFamily, User
from ..auth.store import live_sign_in
from ..db import Database
from ..db.models import utcnow
from .models import (
    ConsultQualityRow,
    ConsultRecordingRow,
    ConsultRow,
    ConsultSeatRow,
    ConsultStepRow,
)

#: (consult, sign-in) pairs checked in one query at most: bounded IN lists
AUTHORITY_BATCH = 500
#: the states of a consult that never took place
_CALLED_OFF = (rules.ConsultState.CANCELLED, rules.ConsultState.EXPIRED)


async def load(
    session: AsyncSession,
    consult_id: uuid.UUID,
    pharmacy_id: uuid.UUID | None,
    lock: bool = False,
    history: bool = True,
) -> tuple[ConsultRow | None, rules.Consult | None]:
    """The consult's row and value (of ``pharmacy_id`` only, when given). Without
    ``history`` the value's history is empty: enough to make a change (the rules never read
    it; :func:`save` writes the steps a change appends) at one query less."""
    query = select(ConsultRow).where(ConsultRow.id == consult_id)
    if pharmacy_id is not None:
        query = query.where(ConsultRow.pharmacy_id == pharmacy_id)
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        return None, None
    if not history:
        return row, _value(row, ())
    steps = await session.scalars(
        select(ConsultStepRow)
        .where(ConsultStepRow.consult_id == consult_id)
        .order_by(ConsultStepRow.id)
    )
    past = tuple(
        rules.Step(
            rules.ConsultState(s.from_state) if s.from_state else None,
            rules.ConsultState(s.to_state),
            s.actor,
            s.reason,
            s.at,
        )
        for s in steps
    )
    return row, _value(row, past)


def _value(row: ConsultRow, history: tuple[rules.Step, ...]) -> rules.Consult:
    consent = (
        rules.Consent(row.consent_at, row.consent_text_version or "")
        if row.consent_at is not None
        else None
    )
    recording = tuple(
        (party, given)
        for party, given in (
            ("patient", row.patient_recording_consent),
            ("pharmacist", row.pharmacist_recording_consent),
        )
        if given is not None
    )
    return rules.Consult(
        id=str(row.id),
        pharmacist=str(row.pharmacist_id),
        patient=str(row.patient_id),
        invite_digest=row.invite_digest,
        invite_expires_at=row.invite_expires_at,
        state=rules.ConsultState(row.state),
        history=history,
        prescription_id=str(row.prescription_id) if row.prescription_id else None,
        invite_used_at=row.invite_used_at,
        consent=consent,
        recording_consent=recording,
        notes=row.notes,
        counselling=row.counselling,
        revision=row.revision,
    )


#: what another feature does in the unit of work of a consult that ends (the payments'
#: consult fee), plugged in by that feature's setup: (session, pharmacy, patient, consult, actor)
ConsultEnded = Callable[[Session, uuid.UUID, uuid.UUID, uuid.UUID, str], None]
ON_ENDED: list[ConsultEnded] = []
#: what another feature does in the unit of work of a consult cancelled or expired before it
#: took place (the payments' consult fee paid in the waiting room is reversed)
ON_CALLED_OFF: list[ConsultEnded] = []
#: what another feature says before a waiting patient is admitted, in the admission's unit of
#: work under the consult's lock: a refusal's (code, words), or None (the payments' consult fee
#: that must be paid first)
AdmissionCheck = Callable[[Session, uuid.UUID, uuid.UUID], tuple[str, str] | None]
ADMIT_CHECKS: list[AdmissionCheck] = []


def _ended(session: Session, row: ConsultRow, actor: str) -> None:
    for hook in ON_ENDED:
        hook(session, row.pharmacy_id, row.patient_id, row.id, actor)


def called_off(session: Session, row: ConsultRow, actor: str) -> None:
    """The :data:`ON_CALLED_OFF` hooks of a consult just cancelled or expired."""
    for hook in ON_CALLED_OFF:
        hook(session, row.pharmacy_id, row.patient_id, row.id, actor)


def _admission(session: Session, row: ConsultRow) -> tuple[str, str] | None:
    for check in ADMIT_CHECKS:
        refused = check(session, row.pharmacy_id, row.id)
        if refused is not None:
            return refused
    return None


async def may_move(
    session: AsyncSession, row: ConsultRow, before: rules.Consult, step: Step
) -> None:
    """Raise :class:`~signaling.consults.ConsultError` when another feature refuses what
    ``step`` would do (an admission: :data:`ADMIT_CHECKS`); nothing is written."""
    if not ADMIT_CHECKS or before.state is not rules.ConsultState.WAITING:
        return
    if step(before).state is rules.ConsultState.ADMITTED:
        refused = await session.run_sync(_admission, row)
        if refused is not None:
            raise rules.ConsultError(*refused)


def save(
    session: AsyncSession, row: ConsultRow, before: rules.Consult, after: rules.Consult
) -> None:
    """Write what ``after`` changed of ``before``: new history steps and the row's columns."""
    add_steps(session, row.id, after.history[len(before.history) :])
    given = dict(after.recording_consent)
    row.state = after.state.value
    row.invite_used_at = after.invite_used_at
    row.consent_at = after.consent.at if after.consent else None
    row.consent_text_version = after.consent.text_version if after.consent else None
    row.notes, row.counselling = after.notes, after.counselling
    row.pharmacist_recording_consent = given.get("pharmacist")
    row.patient_recording_consent = given.get("patient")
    row.revision += 1
    row.updated_at = utcnow()


async def latest_quality(session: AsyncSession, consult_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Each side's latest getStats summary, for the pharmacist."""
    found: dict[str, dict[str, Any]] = {}
    samples = await session.scalars(
        select(ConsultQualityRow)
        .where(ConsultQualityRow.consult_id == consult_id)
        .order_by(ConsultQualityRow.id.desc())
        .limit(50)
    )
    for sample in samples:
        found.setdefault(
            sample.role,
            {
                "bitrate_kbps": sample.bitrate_kbps,
                "fps": sample.fps,
                "packet_loss": sample.packet_loss,
                "rtt_ms": sample.rtt_ms,
                "at": sample.at.isoformat(),
            },
        )
    return found


def add_steps(session: AsyncSession, consult_id: uuid.UUID, steps: tuple[rules.Step, ...]) -> None:
    session.add_all(
        ConsultStepRow(
            consult_id=consult_id,
            from_state=s.from_state.value if s.from_state else None,
            to_state=s.to_state.value,
            actor=s.actor,
            reason=s.reason,
            at=s.at,
        )
        for s in steps
    )


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class SqlConsultStore:
    """:class:`signaling.ports.ConsultStore` on the hub's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_by_invite(self, token: str) -> str | None:
        async with self._db.sessions() as session:
            found = await session.scalar(
                select(ConsultRow.id).where(ConsultRow.invite_digest == rules.token_digest(token))
            )
        return str(found) if found else None

    async def find_by_resume(self, token: str) -> tuple[str, str, Seat, str] | None:
        key = rules.token_digest(token)
        async with self._db.sessions() as session:
            found = (
                await session.execute(
                    select(ConsultSeatRow, ConsultRow.pharmacist_id)
                    .join(ConsultRow, ConsultRow.id == ConsultSeatRow.consult_id)
                    .where(
                        or_(
                            ConsultSeatRow.resume_digest == key,
                            ConsultSeatRow.previous_digest == key,
                        )
                    )
                )
            ).first()
        if found is None:
            return None
        seat, pharmacist = found
        return str(seat.consult_id), seat.role, _seat(seat), str(pharmacist)

    async def load(self, consult_id: str) -> rules.Consult | None:
        key = _uuid(consult_id)
        if key is None:
            return None
        async with self._db.sessions() as session:
            _, consult = await load(session, key, None, history=False)
        return consult

    async def change(
        self, consult_id: str, who: Who, action: str, step: Step, *, guard: str | None = None
    ) -> rules.Consult | None:
        key = uuid.UUID(consult_id)
        async with audit.refusable(self._db) as session:
            row, before = await load(session, key, None, lock=True, history=False)
            if row is None or before is None:
                raise rules.ConsultError("not_found", "No such consult.")
            if guard is not None and not await _release(session, key, guard):
                return None
            try:
                await may_move(session, row, before, step)
                after = _apply(session, row, before, step)
            except rules.ConsultError as exc:
                await audit.refuse(session, *_entry(who, row, action, "refused"), exc)
            actor = str(_entry(who, row, action, "success")[0])
            ended = rules.ConsultState.ENDED
            if after.state is ended and before.state is not ended:
                await session.run_sync(_ended, row, actor)
            if after.state in _CALLED_OFF and before.state not in _CALLED_OFF:
                await session.run_sync(called_off, row, actor)
            await self._audit(session, who, row, action, "success")
        return after

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
    ) -> tuple[rules.Consult, int]:
        key, now = _uuid(consult_id), utcnow()
        async with audit.refusable(self._db) as session:
            # the consult's lock orders this against every change and every other seat
            row, before = (
                await load(session, key, None, lock=True, history=False) if key else (None, None)
            )
            if row is None or before is None or key is None:
                raise rules.ConsultError("not_found", "No such consult.")
            try:
                after = _apply(session, row, before, step)
            except rules.ConsultError as exc:
                await audit.refuse(session, *_entry(who, row, action, "refused"), exc)
            generation = await _take_seat(
                session, key, role, conn_id, resume, used, now, sign_in=who.sign_in
            )
            await self._audit(session, who, row, action, "success")
        return after, generation

    async def unseat(
        self, consult_id: str, role: str, conn_id: str, at: dt.datetime, *, revoke: bool = False
    ) -> None:
        values: dict[str, Any] = {"disconnected_at": at}
        if revoke:  # the resume token dies with the departure
            dead = rules.token_digest(secrets.token_urlsafe(32))
            values.update(resume_digest=dead, previous_digest=None)
        async with self._db.transaction() as session:
            await session.execute(
                update(ConsultSeatRow)
                .where(
                    ConsultSeatRow.consult_id == uuid.UUID(consult_id),
                    ConsultSeatRow.role == role,
                    ConsultSeatRow.conn_id == conn_id,
                )
                .values(**values)
            )

    async def dropped_seats(self, before: dt.datetime) -> list[tuple[str, str, str]]:
        """Seats whose socket dropped before ``before`` and whose consult was not yet told."""
        async with self._db.sessions() as session:
            rows = await session.execute(
                select(ConsultSeatRow.consult_id, ConsultSeatRow.role, ConsultSeatRow.conn_id)
                .where(
                    ConsultSeatRow.disconnected_at < before, ConsultSeatRow.released_at.is_(None)
                )
                .limit(500)
            )
        return [(str(c), r, conn) for c, r, conn in rows]

    async def authorised(self, held: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        keys = {pair: key for pair in held if (key := _pair(*pair))}
        found: set[tuple[uuid.UUID, uuid.UUID]] = set()
        pairs = list(set(keys.values()))
        async with self._db.sessions() as session:
            for start in range(0, len(pairs), AUTHORITY_BATCH):
                found.update(await _authorised(session, pairs[start : start + AUTHORITY_BATCH]))
        return {pair for pair, key in keys.items() if key in found}

    async def add_quality(self, samples: list[tuple[str, str, protocol.Stats]]) -> None:
        """A second's samples of every consult, in one statement (a thousand a second with
        5,000 consults open: ORM objects for each would cost the loop more than the rest of
        their messages)."""
        now = utcnow()
        rows = [
            {
                "consult_id": uuid.UUID(consult_id),
                "role": role,
                "at": now,
                "bitrate_kbps": stats.bitrate_kbps,
                "fps": stats.fps,
                "packet_loss": stats.packet_loss,
                "rtt_ms": stats.rtt_ms,
            }
            for consult_id, role, stats in samples
        ]
        async with self._db.transaction() as session:
            await session.execute(insert(ConsultQualityRow), rows)

    async def add_recordings(self, consult_id: str, summaries: list[RecordingSummary]) -> None:
        key = uuid.UUID(consult_id)
        async with self._db.transaction() as session:
            row = await session.get(ConsultRow, key)
            assert row is not None
            session.add_all(
                ConsultRecordingRow(
                    consult_id=key,
                    party=summary.party,
                    file=summary.name,
                    video_frames=summary.video_frames,
                    audio_frames=summary.audio_frames,
                    dropped_frames=summary.dropped_frames,
                    bytes=summary.bytes_written,
                    ended_at=utcnow(),
                )
                for summary in summaries
                if summary.name is not None
            )
            await self._audit(session, HUB, row, "consult.recording_saved", "success")

    async def _audit(
        self, session: AsyncSession, who: Who, row: ConsultRow, action: str, outcome: str
    ) -> None:
        await audit.add(session, *_entry(who, row, action, outcome))


def _entry(who: Who, row: ConsultRow, action: str, outcome: str) -> tuple[audit.Actor, audit.Event]:
    """The audit entry of ``who``'s ``action`` on the consult."""
    actor = audit.Actor(*_actor(who, row), row.pharmacy_id, who.ip)
    return actor, audit.Event(action, "consult", str(row.id), outcome=outcome)


def _apply(
    session: AsyncSession, row: ConsultRow, before: rules.Consult, step: Step
) -> rules.Consult:
    """``step`` applied and stored (nothing is written when it changes nothing)."""
    after = step(before)
    if after is before:
        return before
    save(session, row, before, after)
    return dataclasses.replace(after, revision=row.revision)


async def _take_seat(
    session: AsyncSession,
    consult_id: uuid.UUID,
    role: str,
    conn_id: str,
    resume: str,
    used: str | None,
    now: dt.datetime,
    *,
    sign_in: str | None,
) -> int:
    """``conn_id`` holds the side's seat now, with a new resume token, under the pharmacist's
    ``sign_in`` (None for the patient); its generation."""
    seat = await session.get(ConsultSeatRow, (consult_id, role))
    if seat is None:
        seat = ConsultSeatRow(consult_id=consult_id, role=role, generation=0)
        session.add(seat)
    seat.conn_id, seat.generation = conn_id, seat.generation + 1
    seat.sign_in = _uuid(sign_in) if sign_in else None
    seat.resume_digest = rules.token_digest(resume)
    seat.previous_digest = rules.token_digest(used) if used else None
    seat.connected_at, seat.disconnected_at, seat.released_at = now, None, None
    return seat.generation


def _seat(row: ConsultSeatRow) -> Seat:
    sign_in = str(row.sign_in) if row.sign_in else None
    return Seat(row.conn_id, row.disconnected_at, row.released_at, sign_in)


async def _release(session: AsyncSession, consult_id: uuid.UUID, conn_id: str) -> bool:
    """Mark connection ``conn_id``'s seat released if it still holds it, dropped and not yet
    released (its grace period is over); whether it did."""
    done = await session.execute(
        update(ConsultSeatRow)
        .where(
            ConsultSeatRow.consult_id == consult_id,
            ConsultSeatRow.conn_id == conn_id,
            ConsultSeatRow.disconnected_at.is_not(None),
            ConsultSeatRow.released_at.is_(None),
        )
        .values(released_at=utcnow())
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _pair(consult_id: str, sign_in: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    consult, family = _uuid(consult_id), _uuid(sign_in)
    return (consult, family) if consult and family else None


async def _authorised(
    session: AsyncSession, pairs: list[tuple[uuid.UUID, uuid.UUID]]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Of (consult, token family) pairs, those whose family's user may act on the consult
    (:meth:`SqlConsultStore.authorised`), in one query."""
    rows = await session.execute(
        select(ConsultRow.id, TokenFamily.id)
        .join(User, User.id == ConsultRow.pharmacist_id)
        .join(TokenFamily, TokenFamily.user_id == User.id)
        .where(
            ConsultRow.id.in_({consult for consult, _ in pairs}),
            TokenFamily.id.in_({family for _, family in pairs}),
            User.role == "pharmacist",
            User.pharmacy_id == ConsultRow.pharmacy_id,
            *live_sign_in(utcnow()),
        )
    )
    return {(consult, family) for consult, family in rows} & set(pairs)


def _actor(who: Who, row: ConsultRow) -> tuple[str, str]:
    """The audit actor: the pharmacist's user, the consult's patient, or the hub itself."""
    if who.role == "pharmacist" and who.user_id:
        return "user", who.user_id
    if who.role == "patient":
        return "patient", str(row.patient_id)
    return "system", "hub"
