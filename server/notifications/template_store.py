"""The one writer of a pharmacy's notification templates and settings
(:mod:`.template_models`): a template saved (checked first: :func:`eprescribe.notifications.
custom.check`), reset to the default, the drug-name setting switched; and what the triggers
render with (:func:`for_sending`: the pharmacy's template only while it still passes).

The functions take a blocking :class:`~sqlalchemy.orm.Session` in the caller's unit of work
(the HTTP handlers through ``AsyncSession.run_sync``, the triggers directly). Each change is
audited with the versions before and after (no patient data is involved: templates are
the pharmacy's own text).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe.notifications import EventKind, NotificationTemplate
from eprescribe.notifications.custom import check, effective

from .. import audit
from .template_models import NotificationSettings, PharmacyTemplate

log = logging.getLogger(__name__)
RESOURCE = "notification_template"


def allow_drug_names(session: Session, pharmacy_id: uuid.UUID) -> bool:
    """Whether the pharmacy allows drug names in texts and email subjects (off by default)."""
    found = session.scalar(
        select(NotificationSettings.allow_drug_names).where(
            NotificationSettings.pharmacy_id == pharmacy_id
        )
    )
    return bool(found)


def stored(session: Session, pharmacy_id: uuid.UUID) -> dict[tuple[str, str], PharmacyTemplate]:
    """The pharmacy's template rows (reset ones too), by kind and language."""
    rows = session.scalars(
        select(PharmacyTemplate).where(PharmacyTemplate.pharmacy_id == pharmacy_id)
    )
    return {(row.kind, row.language): row for row in rows}


def template_of(row: PharmacyTemplate | None) -> NotificationTemplate | None:
    """The pharmacy's template a row holds (none: reset, the default applies)."""
    if row is None or row.sms is None:
        return None
    return NotificationTemplate(
        EventKind(row.kind),
        row.language,
        row.sms,
        row.email_subject or "",
        row.email_text or "",
        row.email_html,
    )


def _row(
    session: Session, pharmacy_id: uuid.UUID, kind: EventKind, language: str
) -> PharmacyTemplate | None:
    return session.scalar(
        select(PharmacyTemplate)
        .where(
            PharmacyTemplate.pharmacy_id == pharmacy_id,
            PharmacyTemplate.kind == kind.value,
            PharmacyTemplate.language == language,
        )
        .with_for_update()
    )


def save(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    template: NotificationTemplate,
    now: dt.datetime,
) -> PharmacyTemplate:
    """Save ``template`` as the pharmacy's (a new version), checked with the pharmacy's
    setting (:class:`~eprescribe.notifications.custom.Refused`); audited."""
    check(template, allow_drug_names(session, pharmacy_id))
    row = _row(session, pharmacy_id, template.kind, template.language)
    before = _version(row)
    if row is None:
        row = PharmacyTemplate(
            id=uuid.uuid4(),
            pharmacy_id=pharmacy_id,
            kind=template.kind.value,
            language=template.language,
            version=0,
        )
        session.add(row)
    row.version += 1
    row.sms, row.email_subject = template.sms, template.email_subject or None
    row.email_text, row.email_html = template.email_text or None, template.email_html
    row.updated_by, row.updated_at = _user(actor), now
    session.flush()  # two first saves at once: one fails here (unique), not at the commit
    _audit(session, actor, "notification_template.save", row, before, now)
    return row


def reset(
    session: Session,
    actor: audit.Actor,
    pharmacy_id: uuid.UUID,
    kind: EventKind,
    language: str,
    now: dt.datetime,
) -> PharmacyTemplate | None:
    """Back to the default (a new version with no texts); audited. Already the default:
    nothing changes."""
    row = _row(session, pharmacy_id, kind, language)
    if row is None or row.sms is None:
        return row
    before = _version(row)
    row.version += 1
    row.sms = row.email_subject = row.email_text = row.email_html = None
    row.updated_by, row.updated_at = _user(actor), now
    _audit(session, actor, "notification_template.reset", row, before, now)
    return row


def set_allow_drug_names(
    session: Session, actor: audit.Actor, pharmacy_id: uuid.UUID, allowed: bool, now: dt.datetime
) -> bool:
    """Allow drug names in texts and email subjects, or not; audited when it changes. Saved
    templates are not touched: each is checked again when used (:func:`for_sending`)."""
    row = session.scalar(
        select(NotificationSettings)
        .where(NotificationSettings.pharmacy_id == pharmacy_id)
        .with_for_update()
    )
    before = bool(row and row.allow_drug_names)
    if row is None:
        row = NotificationSettings(pharmacy_id=pharmacy_id, allow_drug_names=allowed)
        session.add(row)
    row.allow_drug_names, row.updated_at = allowed, now
    if before != allowed:
        event = audit.Event(
            "notification_settings.update",
            "notification_settings",
            str(pharmacy_id),
            pharmacy_id=pharmacy_id,
            detail={"allow_drug_names": {"before": before, "after": allowed}},
        )
        session.flush()
        audit.append(session, [audit.values(actor, event, now)])
    return allowed


def for_sending(
    session: Session, pharmacy_id: uuid.UUID, kind: EventKind, language: str
) -> tuple[NotificationTemplate, bool]:
    """The template to render ``kind`` in ``language`` with, and whether drug names may show:
    the pharmacy's own while it passes the rules with the setting as it is now, else the
    default (logged: a template saved while drug names were allowed, then not, never sends
    one)."""
    allowed = allow_drug_names(session, pharmacy_id)
    row = session.scalar(
        select(PharmacyTemplate).where(
            PharmacyTemplate.pharmacy_id == pharmacy_id,
            PharmacyTemplate.kind == kind.value,
            PharmacyTemplate.language == language,
        )
    )
    template, passed_over = effective(kind, language, template_of(row), allowed)
    if passed_over is not None and row is not None:
        log.warning(
            "pharmacy template %s/%s v%d not used (%s): the default was sent",
            kind.value, language, row.version, passed_over,
        )  # fmt: skip
    return template, allowed


def _version(row: PharmacyTemplate | None) -> Mapping[str, object] | None:
    """A version as audited: its number, and whether it held the pharmacy's texts."""
    if row is None:
        return None
    return {"version": row.version, "custom": row.sms is not None}


def _audit(
    session: Session,
    actor: audit.Actor,
    action: str,
    row: PharmacyTemplate,
    before: Mapping[str, object] | None,
    now: dt.datetime,
) -> None:
    event = audit.Event(
        action,
        RESOURCE,
        str(row.id),
        pharmacy_id=row.pharmacy_id,
        detail={
            "kind": row.kind,
            "language": row.language,
            "before": dict(before) if before is not None else None,
            "after": dict(_version(row) or {}),
        },
    )
    audit.append(session, [audit.values(actor, event, now)])


def _user(actor: audit.Actor) -> uuid.UUID | None:
    try:
        return uuid.UUID(actor.id) if actor.kind == "user" else None
    except ValueError:
        return None
