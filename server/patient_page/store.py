"""The one writer of the patient page's tables: sign-in codes, patient sessions and the
patients' refill requests. Each function works inside the caller's unit of work and writes
its audit entries there, without an address or a code (IDs only).

A code goes only to a contact point of the pharmacy that is verified and not opted out; at
most :data:`~eprescribe.patient_page.MAX_CODES` of them live at once for one contact point, so
asking again and again neither floods the patient nor gives a guesser more codes to hit. A
session's cookie carries 256 random bits; the table keeps their SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.contacts import CHANNEL, ContactKind, code_hash, code_matches, new_code
from eprescribe.notifications import EventKind
from eprescribe.patient_page import ABSOLUTE, CODE_TTL, IDLE, MAX_ATTEMPTS, MAX_CODES

from .. import audit
from ..admin.models import Pharmacy
from ..db.models import utcnow
from ..notifications import store as outbox
from ..notifications.store import Recipient
from ..patients import contacts
from ..patients.models import PatientContact
from .models import PatientSession, RefillRequest, SignInCode

#: refreshing a session's last use at most this often
TOUCH = dt.timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def address_key(kind: ContactKind, value: str) -> str:
    """A throttle key for an address that does not hold the address itself."""
    return f"patient:{kind.value}:{digest(value)[:40]}"


async def _live_contacts(
    session: AsyncSession, pharmacy_id: uuid.UUID, kind: ContactKind, value: str
) -> list[PatientContact]:
    """The pharmacy's verified contact points with that address that have not opted out
    (one address may be a family's: each profile with it)."""
    return list(
        await session.scalars(
            select(PatientContact)
            .where(
                PatientContact.pharmacy_id == pharmacy_id,
                PatientContact.kind == kind.value,
                PatientContact.value == value,
                PatientContact.verified_at.is_not(None),
                PatientContact.opted_out_at.is_(None),
            )
            .order_by(PatientContact.created_at, PatientContact.id)
            .limit(5)
        )
    )


async def send_codes(
    session: AsyncSession,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    kind: ContactKind,
    value: str,
    now: dt.datetime | None = None,
) -> int:
    """A new sign-in code for each of the pharmacy's live contact points with that address,
    written to the notification outbox (published after the commit: ``outbox.enqueued``);
    how many were sent. Unknown, unverified or opted-out addresses get nothing; each case is
    audited without the address."""
    now = now or utcnow()
    found = await _live_contacts(session, pharmacy_id, kind, value)
    sent = 0
    for contact in found:
        recent = await session.scalar(
            select(func.count())
            .select_from(SignInCode)
            .where(SignInCode.contact_id == contact.id, SignInCode.created_at > now - CODE_TTL)
        )
        if (recent or 0) >= MAX_CODES:
            await audit.add(session, actor, _code_event(contact, "refused", "too_many_codes"))
            continue
        await _send(session, contact, now)
        await audit.add(session, actor, _code_event(contact, "success", None))
        sent += 1
    if not found:
        event = audit.Event(
            "patient.sign_in.code", "patient", None, "no_match", pharmacy_id, {"kind": kind.value}
        )
        await audit.add(session, actor, event)
    return sent


def _code_event(contact: PatientContact, outcome: str, refused: str | None) -> audit.Event:
    detail = {"contact_id": str(contact.id), "kind": contact.kind}
    if refused:
        detail["refused"] = refused
    return audit.Event(
        "patient.sign_in.code",
        "patient",
        str(contact.patient_id),
        outcome,
        contact.pharmacy_id,
        detail,
    )


async def _send(session: AsyncSession, contact: PatientContact, now: dt.datetime) -> None:
    # the contact point's codes past their time go (they count for nothing any more)
    await session.execute(
        delete(SignInCode).where(
            SignInCode.contact_id == contact.id, SignInCode.created_at <= now - CODE_TTL
        )
    )
    code = new_code()
    row = SignInCode(
        id=uuid.uuid4(),
        contact_id=contact.id,
        patient_id=contact.patient_id,
        pharmacy_id=contact.pharmacy_id,
        expires_at=now + CODE_TTL,
        attempts=0,
        created_at=now,
    )
    row.code_hash = code_hash(code, row.id)
    session.add(row)
    pharmacy = await session.get_one(Pharmacy, contact.pharmacy_id)
    prefs = await contacts.preferences_of(session, contact.patient_id)
    recipient = Recipient(contact.value, ZoneInfo("UTC"), prefs.language)
    context = {
        "code": code,
        "minutes": str(int(CODE_TTL.total_seconds() // 60)),
        "pharmacy_name": pharmacy.name,
        "pharmacy_phone": pharmacy.phone or "",
    }
    await session.run_sync(
        lambda s: outbox.enqueue(
            s,
            pharmacy_id=contact.pharmacy_id,
            patient_id=contact.patient_id,
            kind=EventKind.SIGN_IN_CODE,
            channel=CHANNEL[ContactKind(contact.kind)],
            recipient=recipient,
            context=context,
            now=now,
            contact_id=contact.id,
        )
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """A code's check: the code row that matched (None: no match) and why not."""

    code: SignInCode | None
    refused: str | None


async def check_code(
    session: AsyncSession,
    pharmacy_id: uuid.UUID,
    kind: ContactKind,
    value: str,
    code: str,
    now: dt.datetime | None = None,
) -> Checked:
    """Try ``code`` on the live codes sent to that address in the pharmacy (compared in
    constant time): the matching one is used up at once (single use); a miss uses a try of
    each live one, and the fifth kills it. ``refused``: ``no_code`` (none live: never sent,
    expired, used or dead) or ``wrong``."""
    now = now or utcnow()
    rows = list(
        await session.scalars(
            select(SignInCode)
            .join(PatientContact, PatientContact.id == SignInCode.contact_id)
            .where(
                SignInCode.pharmacy_id == pharmacy_id,
                PatientContact.kind == kind.value,
                PatientContact.value == value,
                PatientContact.opted_out_at.is_(None),
                SignInCode.used_at.is_(None),
                SignInCode.expires_at > now,
                SignInCode.attempts < MAX_ATTEMPTS,
            )
            .order_by(SignInCode.created_at.desc())
            .with_for_update()
        )
    )
    if not rows:
        return Checked(None, "no_code")
    matched = [r for r in rows if code_matches(r.code_hash, code, r.id)]
    if matched:
        hit = matched[0]
        # every code of the address dies with the sign-in: one code, one session
        for row in rows:
            row.used_at = now
        return Checked(hit, None)
    for row in rows:
        row.attempts += 1
    return Checked(None, "wrong")


# -- sessions ----------------------------------------------------------------------------------


async def start_session(
    session: AsyncSession, code: SignInCode, now: dt.datetime | None = None
) -> tuple[str, PatientSession]:
    """A new session for the code's patient and pharmacy: the cookie's token and the row."""
    now = now or utcnow()
    # the patient's sessions past their time go (others are deleted only when next used)
    await session.execute(
        delete(PatientSession).where(
            PatientSession.patient_id == code.patient_id,
            (PatientSession.last_seen_at <= now - IDLE)
            | (PatientSession.created_at <= now - ABSOLUTE),
        )
    )
    token = secrets.token_urlsafe(32)
    row = PatientSession(
        id=digest(token),
        patient_id=code.patient_id,
        pharmacy_id=code.pharmacy_id,
        contact_id=code.contact_id,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    return token, row


async def current_session(
    session: AsyncSession, token: str, now: dt.datetime | None = None
) -> PatientSession | None:
    """The live session of ``token`` (touched); an expired one is deleted."""
    now = now or utcnow()
    row = await session.get(PatientSession, digest(token))
    if row is None:
        return None
    if row.last_seen_at + IDLE <= now or row.created_at + ABSOLUTE <= now:
        await session.delete(row)
        return None
    if now - row.last_seen_at > TOUCH:
        row.last_seen_at = now
    return row


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(PatientSession).where(PatientSession.id == session_id))


# -- refill requests ---------------------------------------------------------------------------


async def open_request(session: AsyncSession, prescription_id: uuid.UUID) -> RefillRequest | None:
    return await session.scalar(
        select(RefillRequest).where(
            RefillRequest.prescription_id == prescription_id, RefillRequest.state == "open"
        )
    )


async def add_request(
    session: AsyncSession,
    pharmacy_id: uuid.UUID,
    patient_id: uuid.UUID,
    prescription_id: uuid.UUID,
    kind: str,
    now: dt.datetime | None = None,
) -> RefillRequest:
    now = now or utcnow()
    row = RefillRequest(
        id=uuid.uuid4(),
        pharmacy_id=pharmacy_id,
        patient_id=patient_id,
        prescription_id=prescription_id,
        kind=kind,
        state="open",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def close_request(
    session: AsyncSession, row: RefillRequest, state: str, user_id: uuid.UUID
) -> None:
    await session.execute(
        update(RefillRequest)
        .where(RefillRequest.id == row.id)
        .values(state=state, handled_by=user_id, updated_at=utcnow())
    )
    row.state, row.handled_by = state, user_id
