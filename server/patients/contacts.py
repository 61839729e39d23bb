"""The one writer of a profile's contact points and preferences, and the one reader the
notification triggers ask where a message goes (:func:`recipient_for`).

Contact points are verified before use: adding one writes a six-digit code's hash and sends
the code through the notification outbox (the ``sign_in_code`` kind: the templates have no
kind of their own for a contact point's code, and that one says "code, expires in N
minutes"), due at once and published after the commit. Opting out (:func:`opt_out`: an
inbound STOP, an email's unsubscribe link) takes effect in the same unit of work for every
profile with that address. Audit entries hold IDs, never an address or a code.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe.contacts import (
    CHANNEL,
    CODE_TTL,
    CONSENT_KINDS,
    MAX_ATTEMPTS,
    Channel,
    ContactKind,
    ContactPoint,
    Unreachable,
    choose,
    code_hash,
    code_matches,
    new_code,
)
from eprescribe.notifications import DEFAULT_QUIET_HOURS, EventKind, QuietHours

from .. import audit
from ..admin.models import Pharmacy
from ..db.models import utcnow
from ..notifications import store as outbox
from ..notifications.store import Recipient
from .models import PatientContact, PatientPreferences, PatientProfile

#: what a contact point's verification code is sent as (see the module's docstring)
CODE_KIND = EventKind.SIGN_IN_CODE


async def contacts_of(session: AsyncSession, patient_id: uuid.UUID) -> list[PatientContact]:
    """The profile's contact points, oldest first."""
    return list(
        await session.scalars(
            select(PatientContact)
            .where(PatientContact.patient_id == patient_id)
            .order_by(PatientContact.created_at, PatientContact.id)
        )
    )


async def preferences_of(session: AsyncSession, patient_id: uuid.UUID) -> PatientPreferences:
    """The profile's preferences; the defaults (not yet added) when none were set."""
    found = await session.get(PatientPreferences, patient_id)
    return found or PatientPreferences(
        patient_id=patient_id,
        language="en",
        preferred_channel="none",
        ninety_day_supply=False,
        easy_open_caps=False,
        large_print_labels=False,
        consent={},
    )


def quiet_hours(prefs: PatientPreferences) -> QuietHours:
    if prefs.quiet_start is None or prefs.quiet_end is None:
        return DEFAULT_QUIET_HOURS
    return QuietHours(prefs.quiet_start, prefs.quiet_end)


@dataclass(frozen=True, slots=True)
class Reach:
    """Where a notification goes (:func:`reach`): the recipient, the channel, and the contact
    point it was chosen from (an email's unsubscribe link names it)."""

    recipient: Recipient
    channel: Channel
    contact_id: uuid.UUID


async def recipient_for(
    session: AsyncSession, patient_id: uuid.UUID, kind: EventKind | str
) -> Recipient | None:
    """Where a ``kind`` notification to the patient goes, in their language, time zone and
    quiet hours: a contact point on their preferred channel that is verified and not opted
    out, when they consent to ``kind`` there (:func:`eprescribe.contacts.choose`). ``None``:

    - no channel chosen (``none``, or never asked): nobody is written to unasked;
    - ``kind`` switched off on that channel;
    - no contact point on it, none verified yet, or each verified one opted out (the other
      channel is not a fallback: the patient said how to be reached);
    - no time zone (the console refuses a channel without one): quiet hours cannot be kept.
    """
    found = await session.run_sync(lambda s: reach(s, patient_id, kind))
    return found.recipient if found is not None else None


def reach(session: Session, patient_id: uuid.UUID, kind: EventKind | str) -> Reach | None:
    """:func:`recipient_for` on a blocking session (a store's unit of work, inside its
    ``run_sync``), with the channel and the contact point chosen."""
    prefs = session.get(PatientPreferences, patient_id)
    if prefs is None or prefs.time_zone is None:
        return None
    rows = list(
        session.scalars(
            select(PatientContact)
            .where(PatientContact.patient_id == patient_id)
            .order_by(PatientContact.created_at, PatientContact.id)
        )
    )
    points = [
        ContactPoint(
            ContactKind(r.kind), r.value, r.verified_at is not None, r.opted_out_at is not None
        )
        for r in rows
    ]
    found = choose(points, prefs.preferred_channel, prefs.consent, kind)
    if isinstance(found, Unreachable):
        return None
    row = rows[points.index(found)]
    recipient = Recipient(
        found.address, ZoneInfo(prefs.time_zone), prefs.language, quiet_hours(prefs)
    )
    return Reach(recipient, CHANNEL[found.kind], row.id)


# -- verification -------------------------------------------------------------------------------


async def send_code(
    session: AsyncSession, contact: PatientContact, now: dt.datetime | None = None
) -> uuid.UUID:
    """A new code for ``contact`` (the previous one dead), its hash stored and the code
    written to the outbox to ``contact`` itself, due at once: the notification's ID."""
    now = now or utcnow()
    code = new_code()
    contact.code_hash, contact.code_expires_at = code_hash(code, contact.id), now + CODE_TTL
    contact.code_attempts, contact.updated_at = 0, now
    pharmacy = await session.get_one(Pharmacy, contact.pharmacy_id)
    prefs = await preferences_of(session, contact.patient_id)
    recipient = Recipient(contact.value, ZoneInfo("UTC"), prefs.language)
    context = {
        "code": code,
        "minutes": str(int(CODE_TTL.total_seconds() // 60)),
        "pharmacy_name": pharmacy.name,
        "pharmacy_phone": pharmacy.phone or "",
    }
    return await session.run_sync(
        lambda s: outbox.enqueue(
            s,
            pharmacy_id=contact.pharmacy_id,
            patient_id=contact.patient_id,
            kind=CODE_KIND,
            channel=CHANNEL[ContactKind(contact.kind)],
            recipient=recipient,
            context=context,
            now=now,
        )
    )


def check_code(contact: PatientContact, code: str, now: dt.datetime) -> str:
    """Try ``code`` on ``contact``: ``verified``, ``wrong`` (a try used), or ``dead`` (no
    code, expired, or its tries used up: a new one must be asked for). A verified contact
    point stays verified: ``verified`` again, without a code."""
    if contact.verified_at is not None:
        return "verified"
    expires = contact.code_expires_at
    if contact.code_hash is None or expires is None or expires <= now:
        return "dead"
    if contact.code_attempts >= MAX_ATTEMPTS:
        return "dead"
    contact.updated_at = now
    if code_matches(contact.code_hash, code, contact.id):
        contact.verified_at, contact.code_hash, contact.code_expires_at = now, None, None
        return "verified"
    contact.code_attempts += 1
    if contact.code_attempts >= MAX_ATTEMPTS:
        contact.code_hash = None  # its expiry kept: when a new one may be sent counts from it
        return "dead"
    return "wrong"


# -- opting out and in --------------------------------------------------------------------------


async def opt_out(
    session: AsyncSession,
    channel: Channel | str,
    address: str,
    actor: audit.Actor,
    now: dt.datetime | None = None,
) -> int:
    """Record at once that ``address`` wants nothing more on ``channel``: every contact
    point with it, of every profile in every pharmacy (the address is the person's), each
    audited. How many it changed (already opted out: unchanged)."""
    return await _switch(session, Channel(channel), address, actor, now or utcnow(), out=True)


async def opt_in(
    session: AsyncSession,
    channel: Channel | str,
    address: str,
    actor: audit.Actor,
    now: dt.datetime | None = None,
) -> int:
    """Undo :func:`opt_out` (an inbound START): how many contact points it changed."""
    return await _switch(session, Channel(channel), address, actor, now or utcnow(), out=False)


async def _switch(
    session: AsyncSession,
    channel: Channel,
    address: str,
    actor: audit.Actor,
    now: dt.datetime,
    *,
    out: bool,
) -> int:
    kind = next(k for k, c in CHANNEL.items() if c is channel)
    rows = await session.scalars(
        select(PatientContact)
        .where(PatientContact.kind == kind.value, PatientContact.value == address)
        .order_by(PatientContact.id)
        .with_for_update()
    )
    changed = [r for r in rows if (r.opted_out_at is None) is out]
    for row in changed:
        row.opted_out_at, row.updated_at = (now if out else None), now
    if changed:
        action = "patient.contact.opt_out" if out else "patient.contact.opt_in"
        await session.run_sync(
            audit.append,
            [audit.values(actor, opt_event(action, row, channel), now) for row in changed],
        )
    return len(changed)


def opt_event(action: str, row: PatientContact, channel: Channel) -> audit.Event:
    return audit.Event(
        action,
        "patient",
        str(row.patient_id),
        pharmacy_id=row.pharmacy_id,
        detail={"contact_id": str(row.id), "channel": channel.value},
    )


async def opted_out_since(session: AsyncSession, kind: str, value: str) -> dt.datetime | None:
    """When ``value`` first opted out on any contact point (a contact point added again
    after being removed keeps the patient's STOP)."""
    return await session.scalar(
        select(func.min(PatientContact.opted_out_at)).where(
            PatientContact.kind == kind, PatientContact.value == value
        )
    )


async def own_profile(
    session: AsyncSession, patient_id: uuid.UUID, pharmacy_id: uuid.UUID | None
) -> PatientProfile | None:
    """The profile, when it is ``pharmacy_id``'s (locked for the unit of work's change)."""
    return await session.scalar(
        select(PatientProfile)
        .where(PatientProfile.id == patient_id, PatientProfile.pharmacy_id == pharmacy_id)
        .with_for_update()
    )


# -- consent ------------------------------------------------------------------------------------


def check_switches(switches: list[tuple[str, str, bool]]) -> None:
    """``ValueError`` (one sentence) for a kind a patient does not switch (a sign-in code, the
    SMS keywords' answers) or that does not exist, or a channel other than email or SMS."""
    kinds = {k.value for k in CONSENT_KINDS}
    unknown = sorted({kind for kind, _, _ in switches} - kinds)
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a kind a patient switches: {sorted(kinds)}.")
    channels = {c.value for c in Channel}
    if any(channel not in channels for _, channel, _ in switches):
        raise ValueError(f"A channel is one of {sorted(channels)}.")


async def switch_consent(
    session: AsyncSession, patient_id: uuid.UUID, switches: list[tuple[str, str, bool]]
) -> PatientPreferences:
    """Set each ``(kind, channel, allowed)`` switch (checked with :func:`check_switches`);
    the others stay. The console and the patient's own page both write consent here."""
    prefs = await preferences_of(session, patient_id)
    consent = {kind: dict(channels) for kind, channels in prefs.consent.items()}
    for kind, channel, allowed in switches:
        consent.setdefault(kind, {})[channel] = allowed
    prefs.consent, prefs.updated_at = consent, utcnow()
    session.add(prefs)
    await session.flush()
    return prefs
