"""The wiring of a profile's contact points, preferences and consent: the console's routes
(:mod:`.contacts_http`) and an email's unsubscribe link (:mod:`.unsubscribe`). Apart from
``server.patients``' own setup because it writes to the notification outbox, whose table
refers to the profiles: importing it from the package would make a cycle."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import contacts_http, unsubscribe

_PATIENT = "/api/v1/patients/{id}"


def setup(app: web.Application, settings: Settings) -> None:
    app.cleanup_ctx.append(unsubscribe.key_ctx)
    router = app.router
    router.add_get(f"{_PATIENT}/preferences", contacts_http.get_preferences)
    router.add_put(f"{_PATIENT}/preferences", contacts_http.put_preferences)
    router.add_put(f"{_PATIENT}/consent", contacts_http.put_consent)
    router.add_post(f"{_PATIENT}/contacts", contacts_http.add_contact)
    router.add_post(f"{_PATIENT}/contacts/{{contact}}/verify", contacts_http.verify_contact)
    router.add_delete(f"{_PATIENT}/contacts/{{contact}}", contacts_http.delete_contact)
    router.add_get(unsubscribe.PATH, unsubscribe.show)
    router.add_post(unsubscribe.PATH, unsubscribe.unsubscribe)
