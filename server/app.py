"""The application factory: wiring only, no I/O until the app starts.

Each feature adds its own routes, state and cleanup contexts in its ``setup(app, settings)``;
a new feature adds one line here.
"""

from __future__ import annotations

from aiohttp import web

from . import (
    adherence,
    auth,
    background,
    consults,
    db,
    demo_ehr,
    drugs,
    health,
    http,
    intake,
    inventory,
    logs,
    openapi,
    patient_page,
    patients,
    payments,
    prescriptions,
    staff,
    tracing,
    webclient,
    worker,
)
from .dispensing import fills_feature as fills
from .errors import error_middleware
from .metrics import http as metrics
from .notifications import callbacks as notifications
from .notifications import settings_http as notification_settings
from .notifications import templates_http as notification_templates
from .notifications import triggers
from .patients import contacts_feature as patient_contacts
from .patients import merge_feature as patient_merges
from .patients import timeline as patient_timeline
from .schedule import feature as schedule
from .settings import SETTINGS, Settings


def create_app(settings: Settings) -> web.Application:
    # The body limit is enforced per endpoint as well; this is the ceiling for all of them.
    # Bodies are decoded by read_body, within their size limit (aiohttp's own decoding would
    # hand handlers more bytes than the Content-Length they check).
    tracing.configure(settings, "telepharm-hub")  # off unless TELEPHARM_TRACING says
    app = web.Application(
        middlewares=[logs.request_ids, *tracing.middlewares(settings), error_middleware],
        client_max_size=settings.max_message_bytes,
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    # The order matters: resources open in this order and close in reverse.
    http.setup(app, settings)  # response headers, trusted proxies
    background.setup(app, settings)  # first: every feature below may add loops to it
    logs.setup(app, settings)  # the log flush loop: stopped last, after everything logged
    metrics.setup(app, settings)  # the observer, before the database and features it watches
    db.setup(app, settings)  # the database before the features that use it
    health.setup(app, settings)
    metrics.serve(app, settings)  # GET /metrics: its own listener, or a token on this port
    auth.setup(app, settings)
    worker.setup(app, settings)  # before the intake, which publishes to it
    triggers.setup(app, settings)  # after the worker (its publisher), before the stores
    schedule.setup(app, settings)  # scheduled notices, under a lease shared by all processes
    intake.setup(app, settings)
    prescriptions.setup(app, settings)
    fills.setup(app, settings)  # after prescriptions: the fill flow moves them
    patients.setup(app, settings)
    adherence.setup(app, settings)  # reads the fills and the patients' profiles
    patient_contacts.setup(app, settings)  # preferences, contacts, the unsubscribe link
    patient_merges.setup(app, settings)  # the match-review queue, merges and unmerges
    patient_timeline.setup(app, settings)  # every event of a patient, from the tables holding it
    patient_page.setup(app, settings)  # the patient's own page: sign-in by code, /api/v1/me
    consults.setup(app, settings)  # after auth: its sockets check sign-ins
    staff.setup(app, settings)
    drugs.setup(app, settings)  # the drug picker's search
    inventory.setup(app, settings)  # stock by product and lot; the fills take from it
    payments.setup(app, settings)  # the ledger; a fill that becomes ready is charged
    notifications.setup(app, settings)  # the SMS provider's signed status callbacks
    notification_templates.setup(app, settings)  # a pharmacy's own templates (admins)
    notification_settings.setup(app, settings)  # the events switched, drug names allowed
    openapi.setup(app, settings)  # describes the routes of every feature
    webclient.setup(app, settings)
    demo_ehr.setup(app, settings)  # only with TELEPHARM_DEMO_EHR=1 (make run): the demo prescriber
    return app
