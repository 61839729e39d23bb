"""A pharmacy admin's notification templates: each kind's template in each language (the
pharmacy's own or the default), saved after a preview filled in with synthetic values, reset
to the default (the drug-name setting they are checked against is changed at
:mod:`.settings_http`). The caller's own pharmacy only, pharmacy admins only (anyone else:
403, audited); every change audited with the versions before and after
(:mod:`.template_store`). The rules are the domain's (:mod:`eprescribe.notifications.custom`):
a template they refuse is a 422 whose code names the rule and whose detail says why."""

from __future__ import annotations

from typing import Annotated, NoReturn

import msgspec
from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.notifications import (
    DEFAULT_TEMPLATES,
    LANGUAGES,
    SMS_ONLY,
    EventKind,
    NotificationTemplate,
    TemplateError,
)
from eprescribe.notifications.custom import (
    SMS_MAX_SEGMENTS,
    Refused,
    build,
    placeholders,
    preview,
    samples,
)

from .. import audit
from ..callers import Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import Conflict, NotFound, Unprocessable
from ..http import read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation
from ..settings import Settings
from . import template_store
from .template_models import PharmacyTemplate

SCOPE = "rx:verify"
ADMIN = "pharmacy_admin"
PREFIX = "/api/v1/notifications"
MAX_BODY = 64 * 1024
_TEXT = 40_000  # the domain's bounds are tighter (a 422 saying which); this stops a flood
KINDS = [kind.value for kind in EventKind]
_KIND = {
    "name": "kind",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": KINDS},
    "description": "the event kind",
}
_LANGUAGE = {
    "name": "language",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(LANGUAGES)},
    "description": "the language (ISO 639)",
}


class TemplateTexts(Body, frozen=True):
    """A template's texts: the SMS, and (except the SMS-only keyword answers) the email's
    subject and plain text, with an optional HTML alternative. Placeholders: ``$name``."""

    sms: Annotated[str, msgspec.Meta(max_length=_TEXT)]
    email_subject: Annotated[str, msgspec.Meta(max_length=_TEXT)] = ""
    email_text: Annotated[str, msgspec.Meta(max_length=_TEXT)] = ""
    email_html: Annotated[str, msgspec.Meta(max_length=_TEXT)] | None = None


class KindTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """One kind's template in one language: the pharmacy's own (``custom``) or the default."""

    kind: str
    language: str
    custom: bool
    #: the stored version (0: never changed; a reset is a version too)
    version: int
    sms: str
    email_subject: str
    email_text: str
    email_html: str | None
    sms_only: bool
    #: the placeholders this kind may use
    placeholders: list[str]
    updated_at: Timestamp | None


class TemplateList(msgspec.Struct, frozen=True, kw_only=True):
    """Every kind's template in every language, and the rules they are checked against."""

    allow_drug_names: bool
    sms_max_segments: int
    languages: list[str]
    items: list[KindTemplate]


class SmsPreview(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    encoding: str
    units: int
    segments: int


class EmailPreview(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    text: str
    html: str | None


class TemplatePreview(msgspec.Struct, frozen=True, kw_only=True):
    """A proposed template filled in with synthetic sample values (never a patient's)."""

    sms: SmsPreview
    email: EmailPreview | None
    samples: dict[str, str]


def _target(request: web.Request) -> tuple[EventKind, str]:
    kind, language = request.match_info["kind"], request.match_info["language"]
    if kind not in KINDS or language not in LANGUAGES:
        raise NotFound("No such template.")
    return EventKind(kind), language


async def _admin(session: AsyncSession, who: Caller, refused: audit.Event) -> None:
    await who.require_role_audited(session, _with(refused, refused="not_admin"), ADMIN)


def _with(event: audit.Event, **detail: object) -> audit.Event:
    return audit.Event(
        event.action,
        event.resource_type,
        event.resource_id,
        outcome="refused",
        pharmacy_id=event.pharmacy_id,
        detail={**event.detail, **detail},
    )


def _unprocessable(exc: TemplateError) -> Unprocessable:
    return Unprocessable(getattr(exc, "code", "invalid_template"), str(exc))


async def _refuse_template(
    session: AsyncSession, who: Caller, refused: audit.Event, exc: TemplateError
) -> NoReturn:
    problem = _unprocessable(exc)
    await audit.refuse(session, who.actor, _with(refused, refused=problem.code), problem)


def _texts(kind: EventKind, language: str, body: TemplateTexts) -> NotificationTemplate:
    return build(kind, language, body.sms, body.email_subject, body.email_text, body.email_html)


def _item(kind: EventKind, language: str, row: PharmacyTemplate | None) -> KindTemplate:
    own = template_store.template_of(row)
    shown = own or DEFAULT_TEMPLATES[(kind, language)]
    return KindTemplate(
        kind=kind.value,
        language=language,
        custom=own is not None,
        version=row.version if row is not None else 0,
        sms=shown.sms,
        email_subject=shown.email_subject,
        email_text=shown.email_text,
        email_html=shown.email_html,
        sms_only=kind in SMS_ONLY,
        placeholders=sorted(placeholders(kind)),
        updated_at=row.updated_at.isoformat() if row is not None else None,
    )


@operation(
    Operation(
        operation_id="listNotificationTemplates",
        summary="Every kind's notification template in every language (pharmacy admins)",
        scope=SCOPE,
        response=TemplateList,
        errors=("401", "403"),
    )
)
async def list_templates(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(ADMIN)
    async with request.app[DATABASE].sessions() as session:
        rows = await session.run_sync(template_store.stored, who.pharmacy_id)
        allowed = await session.run_sync(template_store.allow_drug_names, who.pharmacy_id)
    items = [
        _item(kind, language, rows.get((kind.value, language)))
        for kind in EventKind
        for language in LANGUAGES
        if (kind, language) in DEFAULT_TEMPLATES
    ]
    return respond(
        TemplateList(
            allow_drug_names=allowed,
            sms_max_segments=SMS_MAX_SEGMENTS,
            languages=list(LANGUAGES),
            items=items,
        )
    )


@operation(
    Operation(
        operation_id="previewNotificationTemplate",
        summary="A proposed template filled in with synthetic sample values, with the SMS's "
        "segments and encoding (nothing saved)",
        scope=SCOPE,
        parameters=[_KIND, _LANGUAGE],
        body=TemplateTexts,
        response=TemplatePreview,
        errors=("400", "401", "403", "404", "413", "415", "422"),
    )
)
async def preview_template(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(ADMIN)
    kind, language = _target(request)
    body = await read_json_as(request, TemplateTexts, MAX_BODY)
    async with request.app[DATABASE].sessions() as session:
        allowed = await session.run_sync(template_store.allow_drug_names, who.pharmacy_id)
    try:
        shown = preview(_texts(kind, language, body), allowed)
    except TemplateError as exc:
        raise _unprocessable(exc) from None
    return respond(
        TemplatePreview(
            sms=SmsPreview(
                text=shown.sms,
                encoding=shown.length.encoding,
                units=shown.length.units,
                segments=shown.length.segments,
            ),
            email=EmailPreview(
                subject=shown.email.subject, text=shown.email.text, html=shown.email.html
            )
            if shown.email is not None
            else None,
            samples=dict(samples(language)),
        )
    )


@operation(
    Operation(
        operation_id="saveNotificationTemplate",
        summary="Save the pharmacy's own template of a kind in a language (a new version)",
        scope=SCOPE,
        parameters=[_KIND, _LANGUAGE],
        body=TemplateTexts,
        response=KindTemplate,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
    )
)
async def save_template(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    kind, language = _target(request)
    body = await read_json_as(request, TemplateTexts, MAX_BODY)
    refused = audit.Event(
        "notification_template.save",
        template_store.RESOURCE,
        None,
        pharmacy_id=who.pharmacy_id,
        detail={"kind": kind.value, "language": language},
    )
    try:
        async with audit.refusable(request.app[DATABASE]) as session:
            await _admin(session, who, refused)
            try:
                template = _texts(kind, language, body)
                row = await session.run_sync(
                    template_store.save, who.actor, who.pharmacy_id, template, utcnow()
                )
            except Refused as exc:
                await _refuse_template(session, who, refused, exc)
            item = _item(kind, language, row)
    except IntegrityError:
        raise Conflict("The template was changed at the same time; try again.") from None
    return respond(item)


@operation(
    Operation(
        operation_id="resetNotificationTemplate",
        summary="Reset a kind's template in a language to the hub's default",
        scope=SCOPE,
        parameters=[_KIND, _LANGUAGE],
        response=KindTemplate,
        errors=("401", "403", "404"),
    )
)
async def reset_template(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    kind, language = _target(request)
    refused = audit.Event(
        "notification_template.reset",
        template_store.RESOURCE,
        None,
        pharmacy_id=who.pharmacy_id,
        detail={"kind": kind.value, "language": language},
    )
    async with audit.refusable(request.app[DATABASE]) as session:
        await _admin(session, who, refused)
        row = await session.run_sync(
            template_store.reset, who.actor, who.pharmacy_id, kind, language, utcnow()
        )
        item = _item(kind, language, row)
    return respond(item)


def setup(app: web.Application, settings: Settings) -> None:
    one = f"{PREFIX}/templates/{{kind}}/{{language}}"
    app.router.add_get(f"{PREFIX}/templates", list_templates)
    app.router.add_put(one, save_template)
    app.router.add_delete(one, reset_template)
    app.router.add_post(f"{one}/preview", preview_template)
