"""What notifies a patient: one function per event, each called by the store that makes the
change, in that change's unit of work (a blocking session, inside the store's ``run_sync``),
so the notification commits with the change or not at all, as the SCRIPT outbox's messages do.

Each asks the profile where the message goes (:func:`server.patients.contacts.reach`: the
preferred channel, verified, consented, not opted out); nowhere is fine: nothing is written.
The context is the minimum necessary: the pharmacy's name and phone, the patient's first name
(the email's greeting), the preferences link, what the event needs (a pick-up date), and for a
prescription's events its drug (``$drug_name``, used only where the pharmacy's own template
asks for it). The template is the pharmacy's own while it passes the rules with the pharmacy's
drug-name setting as it is now, else the default (:func:`.template_store.for_sending`): a
drug name shows in a text or an email subject only where the pharmacy allows it.

The stores hold the hub's :class:`HubTriggers` (``app[TRIGGERS]``, built from the settings
with the hub's publisher) through the :class:`~server.notifications.Triggers` protocol and call
it; without one (a store built bare, in a unit test or a command) nothing notifies.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe.ncpdp import Patient, from_json
from eprescribe.notifications import EventKind, NotificationTemplate, TemplateError
from eprescribe.notifications.defaults import renewal_template
from eprescribe.notifications.templates import DRUG_NAME, VARIABLES
from eprescribe.payments import Money

from ..admin.models import Pharmacy
from ..auth.credentials import load_key
from ..dispensing.models import Fill
from ..patients import contacts
from ..patients.models import PatientProfile
from ..patients.unsubscribe import KEY_FILE, unsubscribe_url
from ..prescriptions.models import Prescription
from ..schedule import occasions, switches
from ..settings import SETTINGS, Settings
from . import NOTIFY, TRIGGERS, Notify, store, template_store

log = logging.getLogger(__name__)
K = EventKind
#: what an event adds to the context, once the recipient is known
Extra = Callable[[contacts.Reach], Mapping[str, str]]
#: how long "needs the prescriber" waits for an answer before it goes (an answer first
#: cancels it): most clarifications are answered within the hour
NEEDS_PRESCRIBER_DELAY = dt.timedelta(hours=1)
#: the patient's own page, one a pharmacy (``/me/{ncpdpid}``: server.webclient's route)
PATIENT_PAGE = "/me"
_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
}


@dataclass
class HubTriggers:
    """The triggers of one hub process: its public base URL (the preferences link), the key
    its unsubscribe links are made with (read on first use), how long "needs the prescriber"
    waits, and where notifications are published after the commit (``None``: the sweep finds
    them)."""

    issuer: str
    keys_dir: Path
    needs_prescriber_delay: dt.timedelta = NEEDS_PRESCRIBER_DELAY
    notify: Notify | None = None
    _key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, notify: Notify | None = None) -> HubTriggers:
        delay = dt.timedelta(seconds=settings.needs_prescriber_delay)
        return cls(settings.issuer, settings.keys_dir, delay, notify)

    def written(self, session: Any) -> list[uuid.UUID]:
        """What ``session``'s unit of work wrote (:func:`.store.enqueued`)."""
        return store.enqueued(session)

    def publish(self, written: Sequence[uuid.UUID]) -> None:
        """After the commit: send what the unit of work wrote."""
        if written and self.notify is not None:
            self.notify(written)

    # -- the events -------------------------------------------------------------------------

    def ready_for_pickup(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        fill_id: uuid.UUID,
        pickup_by: dt.datetime,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A fill reached ``ready``: pick it up by ``pickup_by`` (when it goes back to
        stock), written as a date in the patient's time zone and language."""
        return self._notify(
            session, K.READY_FOR_PICKUP, pharmacy_id, patient_id, fill_id, now,
            lambda reach: {"pickup_by": _date(pickup_by, reach.recipient.zone,
                                              reach.recipient.language)},
        )  # fmt: skip

    def cancelled_by_prescriber(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        rx_id: uuid.UUID,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A CancelRx was approved: the prescription will not be filled. A "needs the
        prescriber" still pending about it is moot: cancelled."""
        store.cancel(session, K.NEEDS_PRESCRIBER, rx_id, now)
        return self._notify(session, K.CANCELLED_BY_PRESCRIBER, pharmacy_id, patient_id, rx_id, now)

    def needs_prescriber(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        rx_id: uuid.UUID,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A pharmacist asked the prescriber (clarify: an RxChangeRequest): due after
        :attr:`needs_prescriber_delay` (then the quiet hours), unless the prescriber answers
        first (:func:`prescriber_answered`). One pending a prescription at most: a second
        question while the first waits writes nothing."""
        if store.pending(session, K.NEEDS_PRESCRIBER, rx_id):
            return None
        return self._notify(
            session, K.NEEDS_PRESCRIBER, pharmacy_id, patient_id, rx_id, now,
            after=self.needs_prescriber_delay,
        )  # fmt: skip

    def consult_scheduled(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        consult_id: uuid.UUID,
        invite_url: str,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A pharmacist scheduled a consult: its invite link (the token in it is stored
        nowhere else but this message), and when it was scheduled (a consult opens at once:
        there is no appointment time yet), in the patient's time zone."""
        return self._notify(
            session, K.CONSULT_SCHEDULED, pharmacy_id, patient_id, consult_id, now,
            lambda reach: {
                "invite_url": invite_url,
                "consult_time": _moment(now, reach.recipient.zone, reach.recipient.language),
            },
        )  # fmt: skip

    def prescription_received(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        rx_id: uuid.UUID,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A prescription was received and linked to the patient's profile (written by the
        scheduled job, :mod:`server.schedule.jobs`, once a prescription)."""
        return self._notify(session, K.PRESCRIPTION_RECEIVED, pharmacy_id, patient_id, rx_id, now)

    def refill_due(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        fill_id: uuid.UUID,
        runs_out_on: dt.date,
        renewal: bool,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """The supply of the fill ``fill_id`` runs out on ``runs_out_on``: a refill is due
        then; with no refill left (``renewal``), the text says the pharmacy will ask the
        prescriber (:func:`~eprescribe.notifications.renewal_template`). The patient's and
        the pharmacy's ``refill_due`` switches decide both."""
        return self._notify(
            session, K.REFILL_DUE, pharmacy_id, patient_id, fill_id, now,
            lambda reach: {"refill_date": _day(runs_out_on, reach.recipient.language)},
            template=(lambda language: renewal_template(language)) if renewal else None,
        )  # fmt: skip

    def not_collected(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        fill_id: uuid.UUID,
        pickup_by: dt.datetime,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A ready fill still waits for its patient: pick it up by ``pickup_by``."""
        return self._notify(
            session, K.NOT_COLLECTED, pharmacy_id, patient_id, fill_id, now,
            lambda reach: {"pickup_by": _date(pickup_by, reach.recipient.zone,
                                              reach.recipient.language)},
        )  # fmt: skip

    def shipped(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        fill_id: uuid.UUID,
        carrier: str,
        tracking_number: str,
        tracking_url: str,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """A ready fill was shipped to the patient: the carrier, tracking number and link."""
        return self._notify(
            session, K.SHIPPED, pharmacy_id, patient_id, fill_id, now,
            lambda reach: {"carrier": carrier, "tracking_number": tracking_number,
                           "tracking_url": tracking_url},
        )  # fmt: skip

    def payment_failed(
        self,
        session: Session,
        *,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        attempt_id: uuid.UUID,
        amount: int,
        currency: str,
        now: dt.datetime,
    ) -> uuid.UUID | None:
        """The bank refused an instalment of the patient's payment plan (the attempt
        ``attempt_id``: the payment asked): what was asked and the patient's page, where the
        card is changed; no card digits, nothing of a drug. Written once an attempt (its
        occasion, :mod:`server.schedule.occasions`), however often the refusal is reported
        (the provider's answer, then its webhook)."""
        taken = occasions.claim(session, [(K.PAYMENT_FAILED, attempt_id, pharmacy_id)], now)
        if not taken:
            return None
        ncpdpid = session.get_one(Pharmacy, pharmacy_id).ncpdpid
        return self._notify(
            session, K.PAYMENT_FAILED, pharmacy_id, patient_id, attempt_id, now,
            lambda reach: {"amount": Money(amount, currency).show(),
                           "pay_url": f"{self.issuer}{PATIENT_PAGE}/{ncpdpid}"},
        )  # fmt: skip

    def prescriber_answered(
        self, session: Session, *, rx_id: uuid.UUID, now: dt.datetime
    ) -> list[uuid.UUID]:
        """The prescriber answered about ``rx_id`` (an RxChangeResponse): "needs the
        prescriber", if still pending, is cancelled (never sent)."""
        return store.cancel(session, K.NEEDS_PRESCRIBER, rx_id, now)

    # -- shared -----------------------------------------------------------------------------

    def _notify(
        self,
        session: Session,
        kind: EventKind,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID | None,
        subject_id: uuid.UUID,
        now: dt.datetime,
        extra: Extra | None = None,
        after: dt.timedelta | None = None,
        template: Callable[[str], NotificationTemplate] | None = None,
    ) -> uuid.UUID | None:
        if patient_id is None:  # the prescription matched no profile (yet)
            return None
        if not switches.enabled(session, pharmacy_id, kind):
            return None  # the pharmacy switched the event off
        reach = contacts.reach(session, patient_id, kind)
        if reach is None:
            return None
        pharmacy = session.get_one(Pharmacy, pharmacy_id)
        context = {
            "pharmacy_name": pharmacy.name,
            "pharmacy_phone": pharmacy.phone or "",
            "first_name": _first_name(session, patient_id),
            "manage_url": self._manage_url(reach.contact_id),
            **(extra(reach) if extra is not None else {}),
        }
        if DRUG_NAME in VARIABLES[kind]:
            context[DRUG_NAME] = _drug_name(session, subject_id)
        chosen = template(reach.recipient.language) if template is not None else None
        try:
            return self._write(session, kind, pharmacy_id, patient_id, subject_id, reach, context,
                               now, after, chosen)  # fmt: skip
        except TemplateError as exc:
            # a template that cannot render must not stop the pharmacy's change (a fill, a
            # cancel): the message is lost, said in the log (no patient data in the reason)
            log.warning("%s notification not written: %s", kind.value, exc)
            return None

    def _write(
        self,
        session: Session,
        kind: EventKind,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        subject_id: uuid.UUID,
        reach: contacts.Reach,
        context: Mapping[str, str],
        now: dt.datetime,
        after: dt.timedelta | None,
        template: NotificationTemplate | None = None,
    ) -> uuid.UUID:
        # the pharmacy's own template, unless the caller chose a variant (a refill reminder
        # that says the prescriber will be asked to renew)
        own, allow_drug_names = template_store.for_sending(
            session, pharmacy_id, kind, reach.recipient.language
        )
        notification = store.enqueue(
            session,
            pharmacy_id=pharmacy_id,
            patient_id=patient_id,
            kind=kind,
            channel=reach.channel,
            recipient=reach.recipient,
            context=context,
            template=template or own,
            allow_drug_names=allow_drug_names,
            now=now,
            after=after,
            subject_id=subject_id,
            contact_id=reach.contact_id,
        )
        log.info("notification %s written (%s)", notification, kind.value)
        return notification

    def _manage_url(self, contact_id: uuid.UUID) -> str:
        """The email's preferences link: the contact point's unsubscribe page (a page that
        asks before it changes anything) until the patient page exists."""
        if self._key is None:
            self._key = load_key(self.keys_dir / KEY_FILE)
        return unsubscribe_url(self.issuer, self._key, contact_id)


def _drug_name(session: Session, subject_id: uuid.UUID) -> str:
    """The drug of the prescription ``subject_id`` is, or whose fill it is ("" if neither)."""
    found = session.scalar(
        select(Prescription.drug_description).where(Prescription.id == subject_id)
    )
    if found is None:
        found = session.scalar(
            select(Prescription.drug_description)
            .join(Fill, Fill.prescription_id == Prescription.id)
            .where(Fill.id == subject_id)
        )
    return found or ""


def _first_name(session: Session, patient_id: uuid.UUID) -> str:
    demographics = session.scalar(
        select(PatientProfile.demographics).where(PatientProfile.id == patient_id)
    )
    try:
        name = from_json(Patient, demographics).name if demographics else None
    except (ValueError, TypeError):
        return ""
    return (name.first or "") if name is not None else ""


def _moment(at: dt.datetime, zone: ZoneInfo, language: str) -> str:
    """A date and time as the patient reads it: "December 20, 2:05 PM" or "20 de diciembre,
    14:05"."""
    local = at.astimezone(zone)
    if language == "es":
        return f"{_date(at, zone, language)}, {local:%H:%M}"
    hour = local.hour % 12 or 12
    return f"{_date(at, zone, language)}, {hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def _date(at: dt.datetime, zone: ZoneInfo, language: str) -> str:
    """A date as the patient reads it: "December 20" or "20 de diciembre"."""
    return _day(at.astimezone(zone).date(), language)


def _day(day: dt.date, language: str) -> str:
    """A calendar day as the patient reads it."""
    month = _MONTHS.get(language, _MONTHS["en"]).split()[day.month - 1]
    return f"{day.day} de {month}" if language == "es" else f"{month} {day.day}"


async def _triggers_ctx(app: web.Application) -> AsyncIterator[None]:
    app[TRIGGERS] = HubTriggers.from_settings(app[SETTINGS], app.get(NOTIFY))
    yield


def setup(app: web.Application, settings: Settings) -> None:
    """The hub's triggers, for the stores built after them (with the worker's publisher,
    set before)."""
    app.cleanup_ctx.append(_triggers_ctx)
